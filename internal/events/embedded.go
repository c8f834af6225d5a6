package events

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is a NATS server with JetStream running inside this process:
// file storage in a folder of the data folder, no listening port at all
// (clients connect in-process), so nothing outside the process can reach
// it. A deployment past one machine gives Open a connection to a NATS
// cluster instead; nothing else changes.
type Embedded struct {
	ns *server.Server
}

// EmbeddedConfig configures the embedded server.
type EmbeddedConfig struct {
	Dir      string // JetStream storage (created 0700)
	MaxStore int64  // bytes of file storage; 0: 10 GiB or what the disk has
	// MaxPayload is the largest message (0: 8 MiB).
	MaxPayload int32
	Logger     *slog.Logger
	// SyncAlways fsyncs every write: survives a power cut, not only a
	// crash of the process, at a cost in throughput.
	SyncAlways bool
}

// StartEmbedded starts the server and waits until it is ready.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the event store %s: %w", cfg.Dir, err)
	}
	if cfg.MaxStore == 0 {
		cfg.MaxStore = 10 << 30
	}
	opts := &server.Options{
		ServerName:         "noops",
		DontListen:         true,
		JetStream:          true,
		StoreDir:           filepath.Clean(cfg.Dir),
		JetStreamMaxStore:  cfg.MaxStore,
		JetStreamMaxMemory: 256 << 20,
		MaxPayload:         max(cfg.MaxPayload, 8<<20),
		NoSigs:             true,
		SyncAlways:         cfg.SyncAlways,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("starting the event server: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(natsLogger{cfg.Logger.With("component", "nats")}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("starting the event server in %s: not ready after 30s (see the log)", cfg.Dir)
	}
	return &Embedded{ns: ns}, nil
}

// Connect opens an in-process client connection.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(e.ns), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connecting to the embedded event server: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server, flushing JetStream to disk.
func (e *Embedded) Shutdown() {
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
}

// natsLogger sends the server's log to slog.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(f string, v ...any) { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l natsLogger) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l natsLogger) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l natsLogger) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l natsLogger) Debugf(f string, v ...any)  {}
func (l natsLogger) Tracef(f string, v ...any)  {}
