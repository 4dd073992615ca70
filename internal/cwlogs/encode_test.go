package cwlogs

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncodeRoundTrip(t *testing.T) {
	msg := []byte(`{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/aws/eks/prod/cluster","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":5,"message":"{\"verb\":\"create\"}"}]}`)
	for _, c := range []Compression{Gzip, Zlib} {
		comp, err := Compress(msg, c)
		if err != nil {
			t.Fatal(err)
		}
		if header := map[Compression][]byte{Gzip: {0x1f, 0x8b}, Zlib: {0x78, 0xda}}[c]; !bytes.HasPrefix(comp, header) {
			t.Errorf("compression %d: header % x, want % x", c, comp[:2], header)
		}
		var d Decoder
		got, err := d.Decode(SubscriptionEvent(comp))
		if err != nil {
			t.Fatalf("compression %d: %v", c, err)
		}
		text, err := got[0].LogEvents[0].Text()
		if len(got) != 1 || got[0].Owner != "111122223333" || err != nil || string(text) != `{"verb":"create"}` {
			t.Errorf("compression %d: decoded %+v, text %q, %v", c, got, text, err)
		}
	}
	if _, err := Compress(msg, Compression(7)); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("unknown compression: %v", err)
	}
}
