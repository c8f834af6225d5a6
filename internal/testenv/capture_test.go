package testenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"noops/internal/apiclient"
	"noops/internal/errkind"
	"noops/internal/forensics/pcap"
)

// TestCapture records a sandbox's traffic from the host side of its veth
// while requests reach it, and reads the pcapng back: the requests are
// in it. A capture of an unknown sandbox is refused.
func TestCapture(t *testing.T) {
	e := Start(t, Options{StartTimeout: 30 * time.Second})
	deployOK(t, e, Example(t, "hello-go"), "hello")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20; i++ {
			time.Sleep(100 * time.Millisecond)
			e.Get(t, "hello", "/?capture-me")
		}
	}()
	var buf bytes.Buffer
	n, err := e.Client.Capture(ctx, "hello", "", 3*time.Second, 0, &buf, nil)
	<-done
	if err != nil || n == 0 {
		t.Fatalf("Capture = %d bytes, %v", n, err)
	}
	r, err := pcap.Open(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("reading the capture: %v", err)
	}
	found := 0
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the capture: %v", err)
		}
		if strings.Contains(string(p.Payload), "GET /?capture-me") {
			found++
		}
	}
	if found == 0 {
		t.Errorf("the capture (%d bytes, %+v) holds none of the requests; warnings %v", n, r.Stats(), r.Warnings())
	}
	if _, err := e.Client.Capture(ctx, "hello", "no-such-sandbox", time.Second, 0, io.Discard, nil); apiclient.Kind(err) != errkind.NotFound {
		t.Errorf("capture of an unknown sandbox = %v, want not found", err)
	}
}
