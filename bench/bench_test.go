// Package bench measures the hot path of the function against the inflate floor and a
// typical implementation, on the same generated payloads. Run it with bench/run.sh (make
// bench), which pins GOMAXPROCS=1 and prints the figures.
package bench

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/eks-unauthorized-access/detector/bench/workload"
	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
	"github.com/eks-unauthorized-access/detector/internal/detect"
	"github.com/eks-unauthorized-access/detector/internal/inflate"
	"github.com/eks-unauthorized-access/detector/internal/pipeline"
)

// Deliveries of maximum size, from fixed seeds: every benchmark runs over the same bytes.
const deliveries = 3

var loadPayloads = sync.OnceValue(func() []workload.Delivery { return workload.BenchmarkDeliveries(deliveries) })

func payloads(b *testing.B) []workload.Delivery {
	b.Helper()
	ds := loadPayloads()
	audit, events := 0, 0
	for _, d := range ds {
		audit += d.AuditBytes
		events += d.Events
	}
	b.SetBytes(int64(audit)) // MB/s is of audit JSON
	b.Cleanup(func() {
		if b.Elapsed() > 0 {
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		}
	})
	b.ResetTimer()
	return ds
}

// dataOf returns the base64 text of an awslogs event (the generator escapes nothing).
func dataOf(event []byte) []byte {
	const prefix = `{"awslogs":{"data":"`
	return bytes.TrimSuffix(bytes.TrimPrefix(event, []byte(prefix)), []byte(`"}}`))
}

// BenchmarkFloor is (a): base64 decode and inflate into reused buffers, with the same
// libraries as the decoder (internal/inflate), and nothing else.
func BenchmarkFloor(b *testing.B) {
	var zr inflate.Reader
	floor(b, func(comp []byte) (io.Reader, error) { return &zr, zr.Reset(comp) })
}

// BenchmarkFloorStdlib is the floor with compress/gzip, the inflater of the Go baseline
// (c) and of the pipeline before internal/inflate: what the faster inflater gives.
func BenchmarkFloorStdlib(b *testing.B) {
	var src bytes.Reader
	var zr *gzip.Reader
	floor(b, func(comp []byte) (io.Reader, error) {
		src.Reset(comp)
		if zr == nil {
			var err error
			zr, err = gzip.NewReader(&src)
			return zr, err
		}
		return zr, zr.Reset(&src)
	})
}

func floor(b *testing.B, reader func(comp []byte) (io.Reader, error)) {
	ds := payloads(b)
	var comp, out []byte
	for b.Loop() {
		for _, d := range ds {
			data := dataOf(d.Event)
			n := base64.StdEncoding.DecodedLen(len(data))
			if cap(comp) < n {
				comp = make([]byte, n)
			}
			n, err := base64.StdEncoding.Decode(comp[:n], data)
			if err != nil {
				b.Fatal(err)
			}
			zr, err := reader(comp[:n])
			if err != nil {
				b.Fatal(err)
			}
			if cap(out) < len(d.Message)+1 {
				out = make([]byte, 0, len(d.Message)+1)
			}
			out = out[:0]
			for {
				n, err := zr.Read(out[len(out):cap(out)])
				out = out[:len(out)+n]
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if !bytes.Equal(out, d.Message) {
				b.Fatalf("inflated %d bytes, not the %d of the message", len(out), len(d.Message))
			}
		}
	}
}

// BenchmarkPipeline is (b): the pipeline as the handler runs it, decode → prefilter →
// parse → detect → aggregate.
func BenchmarkPipeline(b *testing.B) {
	ds := payloads(b)
	p := pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser})
	for b.Loop() {
		for _, d := range ds {
			res, err := p.Process(d.Event)
			if err != nil {
				b.Fatal(err)
			}
			if res.Stats.Matches != d.ForbiddenCreates {
				b.Fatalf("pipeline found %d matches, want %d", res.Stats.Matches, d.ForbiddenCreates)
			}
		}
	}
}

// BenchmarkDecodeFilter is the decoder plus the prefilter alone, to see where time goes.
func BenchmarkDecodeFilter(b *testing.B) {
	ds := payloads(b)
	var dec cwlogs.Decoder
	for b.Loop() {
		for _, d := range ds {
			ps, err := dec.Decode(d.Event)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, le := range ps[0].LogEvents {
				if detect.MayMatchEscaped(le.Message, detect.ModeSeed) {
					n++
				}
			}
			if n < d.ForbiddenCreates {
				b.Fatalf("prefilter kept %d lines, fewer than the %d matches", n, d.ForbiddenCreates)
			}
		}
	}
}

// baselineEvent is what a typical implementation decodes every message into.
type baselineEvent struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string   `json:"username"`
		UID      string   `json:"uid"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	SourceIPs []string `json:"sourceIPs"`
	UserAgent string   `json:"userAgent"`
	ObjectRef struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Message string `json:"message"`
		Reason  string `json:"reason"`
		Code    int    `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp string            `json:"requestReceivedTimestamp"`
	Annotations              map[string]string `json:"annotations"`
}

// BenchmarkBaseline is (c): events.CloudwatchLogsRawData.Parse, then encoding/json of every
// message into a struct, then the same condition.
func BenchmarkBaseline(b *testing.B) {
	ds := payloads(b)
	for b.Loop() {
		for _, d := range ds {
			var ev events.CloudwatchLogsEvent
			if err := json.Unmarshal(d.Event, &ev); err != nil {
				b.Fatal(err)
			}
			data, err := ev.AWSLogs.Parse()
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, le := range data.LogEvents {
				var a baselineEvent
				if err := json.Unmarshal([]byte(le.Message), &a); err != nil {
					continue
				}
				if strings.EqualFold(a.Verb, "create") && strings.EqualFold(a.ResponseStatus.Reason, "Forbidden") {
					n++
				}
			}
			if n != d.ForbiddenCreates {
				b.Fatalf("baseline found %d matches, want %d", n, d.ForbiddenCreates)
			}
		}
	}
}

// BenchmarkParts times the steps the pipeline adds to the floor, each alone: scanning the
// inflated subscription message, and the prefilter over its messages.
func BenchmarkParts(b *testing.B) {
	b.Run("scan", func(b *testing.B) {
		ds := payloads(b)
		for b.Loop() {
			for _, d := range ds {
				if _, err := cwlogs.ParseMessage(d.Message); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("prefilter", func(b *testing.B) {
		var msgs [][]byte
		for _, d := range loadPayloads() {
			p, err := cwlogs.ParseMessage(d.Message)
			if err != nil {
				b.Fatal(err)
			}
			for _, le := range p.LogEvents {
				msgs = append(msgs, le.Message)
			}
		}
		payloads(b)
		for b.Loop() {
			for _, m := range msgs {
				detect.MayMatchEscaped(m, detect.ModeSeed)
			}
		}
	})
}

// TestPayloadsAreComparable checks that the pipeline benchmarked as (b) finds exactly the
// forbidden creates the generator wrote into each benchmark delivery, so the speed
// comparison is between implementations doing the same work.
func TestPayloadsAreComparable(t *testing.T) {
	p := pipeline.New(pipeline.Options{Rule: detect.UnauthorizedAccess, Mode: detect.ModeSeed, GroupBy: aggregate.GroupByUser})
	for i, d := range loadPayloads() {
		res, err := p.Process(d.Event)
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if res.Stats.LogEvents != d.Events || res.Stats.Matches != d.ForbiddenCreates || d.ForbiddenCreates == 0 {
			t.Errorf("delivery %d: %d log events, %d matches; generator wrote %d events, %d forbidden creates",
				i, res.Stats.LogEvents, res.Stats.Matches, d.Events, d.ForbiddenCreates)
		}
	}
}
