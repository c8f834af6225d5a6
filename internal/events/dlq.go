package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"noops/internal/errkind"
)

// DeadLetter is an event (or invocation) that could not be delivered.
type DeadLetter struct {
	Seq      uint64    `json:"seq"` // its number in the dead letters, for show and replay
	App      string    `json:"app"`
	Event    Event     `json:"event"`
	Origin   string    `json:"origin"` // topic, "cron", "invocation" or "replay"
	Error    string    `json:"error"`
	Attempts int       `json:"attempts"`
	FailedAt time.Time `json:"failed_at"`
	// Invocation is set for an asynchronous invocation: its ID.
	Invocation string `json:"invocation,omitempty"`
}

// Headers of a dead letter, beside the original message's.
const (
	hDLError    = "Noops-Error"
	hDLAttempts = "Noops-Attempts"
	hDLFailedAt = "Noops-Failed-At"
	hDLOrigin   = "Noops-Origin"
)

// deadLetter stores the message with its last error in the app's dead
// letters, then acks it. If the dead letters cannot take it, the message
// is given back to be tried again later: nothing is dropped.
func (f *function) deadLetter(m jetstream.Msg, meta *jetstream.MsgMetadata, ev Event, a attempt, attempts int) {
	dl := nats.NewMsg(subjDLQ + f.def.App)
	for k, v := range m.Headers() {
		if k != nats.MsgIdHdr && k != hReplayedAt {
			dl.Header[k] = v
		}
	}
	origin := originOf(m.Subject())
	msg := a.describe()
	dl.Header.Set(hDLError, truncate(msg, 2000))
	dl.Header.Set(hDLAttempts, strconv.Itoa(attempts))
	dl.Header.Set(hDLFailedAt, f.b.cfg.Now().UTC().Format(time.RFC3339Nano))
	dl.Header.Set(hDLOrigin, origin)
	// One dead letter per stored message, even if this runs twice.
	dl.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq:%s:%d:%s", meta.Stream, meta.Sequence.Stream, f.def.App))
	dl.Data = m.Data()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.b.js.PublishMsg(ctx, dl); err != nil {
		f.b.log.Error("cannot store a dead letter; will try again", "app", f.def.App, "event", ev.ID, "err", err)
		_ = m.NakWithDelay(time.Minute)
		return
	}
	_ = m.Ack()
	inv := m.Headers().Get(hInvocation)
	if inv != "" {
		f.b.invocationDone(ctx, inv, attempts, nil, msg)
	}
	f.b.log.Warn("event sent to the dead letters", "app", f.def.App, "event", ev.ID, "origin", origin, "attempts", attempts, "err", msg)
	if f.b.cfg.OnDeadLetter != nil {
		f.b.cfg.OnDeadLetter(DeadLetter{App: f.def.App, Event: ev, Origin: origin, Error: msg, Attempts: attempts,
			FailedAt: f.b.cfg.Now(), Invocation: inv})
	}
}

func originOf(subject string) string {
	switch {
	case len(subject) > len(subjEvent) && subject[:len(subjEvent)] == subjEvent:
		return subject[len(subjEvent):]
	case len(subject) > len(subjCron) && subject[:len(subjCron)] == subjCron:
		return "cron"
	case len(subject) > len(subjInvoke) && subject[:len(subjInvoke)] == subjInvoke:
		return "invocation"
	}
	return "replay"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// DeadLetters lists an app's dead letters, oldest first, at most limit.
func (b *Bus) DeadLetters(ctx context.Context, app string, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = 1000
	}
	c, err := b.js.OrderedConsumer(ctx, streamDLQ, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjDLQ + app}})
	if err != nil {
		return nil, fmt.Errorf("reading the dead letters of %s: %w", app, err)
	}
	var out []DeadLetter
	for len(out) < limit {
		batch, err := c.FetchNoWait(min(limit-len(out), 256))
		if err != nil {
			return nil, fmt.Errorf("reading the dead letters of %s: %w", app, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			out = append(out, deadLetterOf(app, meta.Sequence.Stream, m.Headers(), m.Data()))
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("reading the dead letters of %s: %w", app, err)
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

// DeadLetter returns one dead letter of an app by its number.
func (b *Bus) DeadLetter(ctx context.Context, app string, seq uint64) (DeadLetter, error) {
	raw, err := b.dlq.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && raw.Subject != subjDLQ+app {
		return DeadLetter{}, errkind.Errorf(errkind.NotFound, "%s has no dead letter %d", app, seq)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("reading dead letter %d: %w", seq, err)
	}
	return deadLetterOf(app, seq, raw.Header, raw.Data), nil
}

func deadLetterOf(app string, seq uint64, h nats.Header, data []byte) DeadLetter {
	ev, err := FromMsg(h, data)
	if err != nil {
		ev.Data = data
	}
	d := DeadLetter{Seq: seq, App: app, Event: ev, Origin: h.Get(hDLOrigin), Error: h.Get(hDLError), Invocation: h.Get(hInvocation)}
	d.Attempts, _ = strconv.Atoi(h.Get(hDLAttempts))
	d.FailedAt, _ = time.Parse(time.RFC3339Nano, h.Get(hDLFailedAt))
	return d
}

// Replay sends dead letters back to their app (and to no other
// subscriber of the topic) as new deliveries with fresh attempts and a
// fresh max_age, then removes them from the dead letters. A crash in
// between can deliver one twice, never lose one.
func (b *Bus) Replay(ctx context.Context, app string, seqs []uint64) (int, error) {
	n := 0
	for _, seq := range seqs {
		raw, err := b.dlq.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && raw.Subject != subjDLQ+app {
			return n, errkind.Errorf(errkind.NotFound, "%s has no dead letter %d", app, seq)
		}
		if err != nil {
			return n, fmt.Errorf("reading dead letter %d: %w", seq, err)
		}
		m := nats.NewMsg(subjReplay + app)
		for k, v := range raw.Header {
			switch k {
			case hDLError, hDLAttempts, hDLFailedAt, hDLOrigin, nats.MsgIdHdr:
			default:
				m.Header[k] = v
			}
		}
		m.Header.Set(hReplayedAt, b.cfg.Now().UTC().Format(time.RFC3339Nano))
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("replay:%d", seq))
		m.Data = raw.Data
		if _, err := b.js.PublishMsg(ctx, m); err != nil {
			return n, publishError("the replay of "+app, err)
		}
		if inv := raw.Header.Get(hInvocation); inv != "" {
			b.invocationRequeued(ctx, inv)
		}
		if err := b.dlq.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return n, fmt.Errorf("removing replayed dead letter %d: %w", seq, err)
		}
		n++
	}
	return n, nil
}
