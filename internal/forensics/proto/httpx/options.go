package httpx

// Options bounds what Extract holds.
type Options struct {
	// MaxHeaderBytes bounds one message's header block (and a chunked
	// body's trailers); default 64 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a decoded (decompressed) body; a body that
	// decodes to more is cut there with a note. Default 1 GiB.
	MaxBodyBytes int64
	// MemLimit is the size above which a decoded body moves from memory
	// to an unlinked temporary file in TempDir; default 16 MiB.
	MemLimit int64
	TempDir  string
}

func (o Options) withDefaults() Options {
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 30
	}
	if o.MemLimit <= 0 {
		o.MemLimit = 16 << 20
	}
	return o
}
