package events

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"noops/internal/spec"
)

// TestExternalServer runs the bus against a NATS server reached over TCP
// by URL, as `noops server --nats URL` does: the same code as the
// embedded server's in-process connection.
func TestExternalServer(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan string, 1)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("ce-id") })
	bus, err := Open(context.Background(), nc, Config{Target: HTTPTarget{URL: func(string) string { return srv }}})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(context.Background())
	if err := bus.SetFunction(context.Background(), Function{App: "app", Topics: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	e := Event{Topic: "t", Data: []byte("over tcp")}
	if err := bus.Publish(context.Background(), &e, "/test"); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		if id != e.ID {
			t.Fatalf("delivered %s, want %s", id, e.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery through the external server")
	}
}

func TestVersionCheck(t *testing.T) {
	for v, want := range map[string]bool{"2.10.0": true, "2.15.3": true, "3.0.0": true, "2.9.10": false, "": false, "x": false} {
		if got := versionAtLeast(v, 2, 10); got != want {
			t.Errorf("versionAtLeast(%q) = %v", v, got)
		}
	}
}

// TestGarbageAnswers: a function that answers bytes that are not HTTP is
// retried like a failing one, and its dead letter says what came back.
func TestGarbageAnswers(t *testing.T) {
	h := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = bufio.NewReader(c).ReadString('\n')
				_, _ = io.WriteString(c, "\x00\x01garbage, not HTTP\r\n\r\n")
			}()
		}
	}()
	h.mu.Lock()
	h.apps["junk"] = "http://" + ln.Addr().String()
	h.mu.Unlock()
	dead := make(chan DeadLetter, 1)
	h.bus.cfg.OnDeadLetter = func(d DeadLetter) { dead <- d }
	h.set(fn("junk", "j"))
	h.publish("j", "x")
	select {
	case d := <-dead:
		if d.Attempts != 3 || !strings.Contains(d.Error, "malformed HTTP") {
			t.Fatalf("dead letter %+v: want 3 attempts and the parse error", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the garbage answers did not end in the dead letters")
	}
}

// FuzzEventHeaders: whatever a publisher sends, Prepare refuses it or the
// event survives the trip through NATS headers unchanged.
func FuzzEventHeaders(f *testing.F) {
	f.Add("orders.created", "id-1", "/src", "type", "key", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "application/json", []byte("{}"))
	f.Add("a.b", "", "", "", "", "garbage", "", []byte(nil))
	f.Fuzz(func(t *testing.T, topic, id, source, typ, key, tp, ct string, data []byte) {
		e := Event{Topic: topic, ID: id, Source: source, Type: typ, PartitionKey: key, TraceParent: tp, ContentType: ct, Data: data}
		if err := e.Prepare("/default", 1<<16); err != nil {
			return
		}
		m := e.natsMsg("ev." + e.Topic)
		back, err := FromMsg(m.Header, m.Data)
		if err != nil {
			t.Fatalf("FromMsg of a prepared event: %v", err)
		}
		if back.ID != e.ID || back.Topic != e.Topic || back.Source != e.Source || back.Type != e.Type || back.PartitionKey != e.PartitionKey ||
			back.TraceParent != e.TraceParent || back.ContentType != e.ContentType || !back.Time.Equal(e.Time) || string(back.Data) != string(e.Data) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, back)
		}
		if err := spec.ValidTopic(back.Topic); err != nil {
			t.Fatalf("a prepared event has an invalid topic: %v", err)
		}
	})
}
