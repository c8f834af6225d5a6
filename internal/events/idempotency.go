package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Idempotency records, one JetStream key-value bucket per app whose TTL is
// the app's idempotency window: the first request with a key is recorded
// IN_PROGRESS with a hash of its payload, completing it stores the
// response, a duplicate gets the stored response, a different payload
// under the same key is a conflict. An IN_PROGRESS record holds a lease:
// when the worker that took it died, another may take over once the
// lease ran out.
type Idempotency struct {
	kv      jetstream.KeyValue
	js      jetstream.JetStream
	subject string // of the bucket's keys: "$KV.<bucket>."
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
	seen    *seen
}

// Outcome of Begin.
type Outcome int

// Outcomes.
const (
	Proceed    Outcome = iota // first (or taken over): do the work, then Complete or Abandon
	Replay                    // done before with this payload: answer with the record
	Conflict                  // the key was used with another payload
	InProgress                // someone is doing it now
)

// Record is one idempotency record.
type Record struct {
	State  string      `json:"state"` // IN_PROGRESS | COMPLETED
	Hash   string      `json:"hash"`  // SHA-256 of the payload
	Lease  time.Time   `json:"lease,omitzero"`
	Status int         `json:"status,omitempty"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
	// Truncated: the response was too large to keep; a duplicate is told
	// so instead of getting a partial body.
	Truncated bool      `json:"truncated,omitempty"`
	Done      time.Time `json:"done,omitzero"`
}

// States of a record.
const (
	StateInProgress = "IN_PROGRESS"
	StateCompleted  = "COMPLETED"
)

// maxStoredBody is the largest response body kept for replays (and for
// invocation results).
const maxStoredBody = 1 << 20

// Idempotency returns the records of an app, creating its bucket with
// the given TTL (or changing the TTL) as needed.
func (b *Bus) Idempotency(ctx context.Context, app string, ttl time.Duration) (*Idempotency, error) {
	b.mu.Lock()
	i := b.idem[app]
	b.mu.Unlock()
	if i != nil && i.ttl == ttl {
		return i, nil
	}
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucketIdem + app,
		Description: "noops idempotency records of " + app, TTL: ttl, Storage: jetstream.FileStorage, Replicas: b.cfg.Replicas,
		MaxValueSize: int32(maxStoredBody + 64<<10)})
	if err != nil {
		return nil, fmt.Errorf("creating the idempotency records of %s: %w", app, err)
	}
	i = &Idempotency{kv: kv, js: b.js, subject: "$KV." + bucketIdem + app + ".", ttl: ttl, now: b.cfg.Now, log: b.log,
		seen: newSeen(kv, ttl, b.cfg.Now(), b.cfg.Shared)}
	b.mu.Lock()
	if old := b.idem[app]; old != nil {
		old.close()
	}
	b.idem[app] = i
	b.mu.Unlock()
	return i, nil
}

// kvKey maps any key to a valid bucket key.
func kvKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:20])
}

// Begin looks the key up and records it IN_PROGRESS when it is new (or
// its lease ran out). rev is the record's revision for Complete and
// Abandon when the outcome is Proceed; rec is the record found otherwise.
func (i *Idempotency) Begin(ctx context.Context, key, hash string, lease time.Duration) (out Outcome, rec *Record, rev uint64, err error) {
	k := kvKey(key)
	mine, _ := json.Marshal(Record{State: StateInProgress, Hash: hash, Lease: i.now().Add(lease)})
	for range 3 {
		rev, err = i.kv.Create(ctx, k, mine)
		if err == nil {
			return Proceed, nil, rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, nil, 0, fmt.Errorf("recording idempotency key: %w", err)
		}
		e, gerr := i.kv.Get(ctx, k)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			continue // expired between the two calls
		}
		if gerr != nil {
			return 0, nil, 0, fmt.Errorf("reading idempotency key: %w", gerr)
		}
		var r Record
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			return 0, nil, 0, fmt.Errorf("reading idempotency key: %w", err)
		}
		switch {
		case r.Hash != hash:
			return Conflict, &r, 0, nil
		case r.State == StateCompleted:
			return Replay, &r, 0, nil
		case i.now().Before(r.Lease):
			return InProgress, &r, 0, nil
		}
		// The worker holding it is gone: take it over.
		rev, err = i.kv.Update(ctx, k, mine, e.Revision())
		if err == nil {
			return Proceed, nil, rev, nil
		}
	}
	return 0, nil, 0, fmt.Errorf("recording idempotency key: contended: %w", err)
}

// Complete stores the response under the key; rec.Hash must be the
// payload's hash given to Begin.
func (i *Idempotency) Complete(ctx context.Context, key string, rev uint64, rec Record) {
	rec.State = StateCompleted
	rec.Lease = time.Time{}
	rec.Done = i.now()
	k := kvKey(key)
	if len(rec.Body) > maxStoredBody {
		rec.Body, rec.Truncated = nil, true
	}
	data, _ := json.Marshal(rec)
	_, _ = i.kv.Update(ctx, k, data, rev)
}

// Abandon deletes an IN_PROGRESS record, so that a retry may do the work.
func (i *Idempotency) Abandon(ctx context.Context, key string, rev uint64) {
	_ = i.kv.Delete(ctx, kvKey(key), jetstream.LastRevision(rev))
}

// Completed reports whether key has a completed record. Deliveries of
// events and invocations use it with Remember instead of Begin: JetStream
// gives a message to one worker at a time, so there is no concurrent
// duplicate to hold off, only a redelivery or a second copy of an event
// to recognise.
func (i *Idempotency) Completed(ctx context.Context, key string) (bool, error) {
	k := kvKey(key)
	if !i.seen.mayHave(k) {
		return false, nil
	}
	e, err := i.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading idempotency key: %w", err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return false, fmt.Errorf("reading idempotency key: %w", err)
	}
	return r.State == StateCompleted, nil
}

// Remember records key as completed without waiting for the store.
func (i *Idempotency) Remember(key string, rec Record) {
	rec.State, rec.Done = StateCompleted, i.now()
	data, _ := json.Marshal(rec)
	k := kvKey(key)
	i.seen.add(k, i.now()) // before the watch brings it back
	if _, err := i.js.PublishAsync(i.subject+k, data); err != nil {
		i.log.Warn("recording a completed delivery", "subject", i.subject, "err", err)
	}
}

// close stops watching the bucket.
func (i *Idempotency) close() { i.seen.stop() }
