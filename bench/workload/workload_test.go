package workload_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/eks-unauthorized-access/detector/bench/workload"
	"github.com/eks-unauthorized-access/detector/internal/audit"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
)

func TestDeliveryIsDeterministic(t *testing.T) {
	a := workload.New(7).Delivery(200_000)
	b := workload.New(7).Delivery(200_000)
	if !bytes.Equal(a.Event, b.Event) {
		t.Fatal("the same seed gave different events")
	}
	if c := workload.New(8).Delivery(200_000); bytes.Equal(a.Event, c.Event) {
		t.Fatal("different seeds gave the same event")
	}
}

// TestDeliveryContents decodes a generated delivery and checks that its counts agree with
// the rule and that its lines look like real audit events.
func TestDeliveryContents(t *testing.T) {
	d := workload.New(1).Delivery(1_500_000)
	var dec cwlogs.Decoder
	payloads, err := dec.Decode(d.Event)
	if err != nil {
		t.Fatal(err)
	}
	if len(payloads) != 1 || len(payloads[0].LogEvents) != d.Events {
		t.Fatalf("decoded %d payloads, want 1 with %d events", len(payloads), d.Events)
	}
	matches, forbidden, bodies, extra, size := 0, 0, 0, 0, 0
	for _, le := range payloads[0].LogEvents {
		line, err := le.Text()
		if err != nil {
			t.Fatal(err)
		}
		size += len(line)
		ev, err := audit.Parse(line)
		if err != nil {
			t.Fatalf("generated line does not parse: %v: %s", err, line)
		}
		if _, ok := detect.Evaluate(ev, time.UnixMilli(le.Timestamp), detect.ModeSeed); ok {
			matches++
		}
		if ev.ResponseStatus != nil && ev.ResponseStatus.Reason == "Forbidden" {
			forbidden++
		}
		if bytes.Contains(line, []byte(`"requestObject"`)) {
			bodies++
		}
		if bytes.Contains(line, []byte(`"extra":{"accessKeyId"`)) {
			extra++
		}
	}
	if matches != d.ForbiddenCreates || forbidden != d.ForbiddenCreates+d.ForbiddenOther {
		t.Errorf("rule matches %d (generator says %d), forbidden %d (generator says %d)",
			matches, d.ForbiddenCreates, forbidden, d.ForbiddenCreates+d.ForbiddenOther)
	}
	if size != d.AuditBytes {
		t.Errorf("audit bytes %d, generator says %d", size, d.AuditBytes)
	}
	if rate := float64(matches) / float64(d.Events); rate < 0.003 || rate > 0.03 {
		t.Errorf("forbidden creates are %.2f%% of events, want about 1%%", 100*rate)
	}
	if avg := size / d.Events; avg < 800 || avg > 2500 {
		t.Errorf("average line %d bytes, want 1-2 KB", avg)
	}
	if bodies == 0 || extra == 0 || d.ForbiddenOther == 0 {
		t.Errorf("missing variety: %d with bodies, %d with IAM extra, %d forbidden non-creates", bodies, extra, d.ForbiddenOther)
	}
}

// TestMaxDeliverySize checks that a full-size delivery has the size CloudWatch Logs sends.
func TestMaxDeliverySize(t *testing.T) {
	d := workload.New(1).Delivery(workload.MaxDeliveryAuditBytes)
	if n := len(d.Event); n < 800_000 || n > 1_100_000 {
		t.Errorf("event is %d bytes, want about 1 MB", n)
	}
}
