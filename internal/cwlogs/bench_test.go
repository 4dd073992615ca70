package cwlogs_test

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"

	"github.com/eks-unauthorized-access/detector/bench/workload"
	"github.com/eks-unauthorized-access/detector/internal/cwlogs"
)

// benchDelivery is one maximum-size generated delivery, in CloudWatch Logs' compact layout
// (the splitter's path) and re-indented (the general scanner's path).
type benchDelivery struct {
	compact, indented workload.Delivery
}

var loadBench = sync.OnceValue(func() benchDelivery {
	d := workload.BenchmarkDeliveries(1)[0]
	var buf bytes.Buffer
	if err := json.Indent(&buf, d.Message, "", "  "); err != nil {
		panic(err) // the generator writes valid JSON
	}
	in := d
	in.Message = buf.Bytes()
	comp, err := cwlogs.Compress(in.Message, cwlogs.Gzip)
	if err != nil {
		panic(err)
	}
	in.Compressed = comp
	in.Event = cwlogs.SubscriptionEvent(comp)
	return benchDelivery{compact: d, indented: in}
})

// countSink counts what Stream hands over.
type countSink struct{ events, bytes int }

func (c *countSink) Restart(*cwlogs.Payload)       { c.events, c.bytes = 0, 0 }
func (c *countSink) LogEvent(e *cwlogs.LogEvent)   { c.events++; c.bytes += len(e.Message) }
func (c *countSink) Payload(*cwlogs.Payload) error { return nil }

// BenchmarkScan times the tokenizers of the package on both layouts: ParseMessage on the
// inflated message, Stream through the window, and Text on every log event (the end of
// the string, then its escapes). MB/s is of the inflated subscription message.
func BenchmarkScan(b *testing.B) {
	all := loadBench()
	for _, c := range []struct {
		name string
		d    workload.Delivery
	}{{"compact", all.compact}, {"indented", all.indented}} {
		b.Run("ParseMessage/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.d.Message)))
			for b.Loop() {
				p, err := cwlogs.ParseMessage(c.d.Message)
				if err != nil || len(p.LogEvents) != c.d.Events {
					b.Fatalf("%d log events, %v", len(p.LogEvents), err)
				}
			}
		})
		b.Run("Stream/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.d.Message)))
			var dec cwlogs.Decoder
			for b.Loop() {
				var s countSink
				if err := dec.Stream(c.d.Event, &s); err != nil || s.events != c.d.Events {
					b.Fatalf("%d log events, %v", s.events, err)
				}
			}
		})
	}
	b.Run("Text", func(b *testing.B) {
		var dec cwlogs.Decoder
		ps, err := dec.Decode(all.compact.Event)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(all.compact.Message)))
		for b.Loop() {
			for _, e := range ps[0].LogEvents {
				if _, err := e.Text(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
