package main

// The large capture: sessions planned from the seed until their objects
// add up to the target size, then played a few at a time with their
// packets interleaved, as a busy link records them.

import (
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"time"
)

// concurrent is how many sessions are open at once in the large capture.
const concurrent = 6

// planned is one session of the large capture.
type planned struct {
	proto  string // http, ftp, smtp, tftp
	specs  []spec
	client host
	server host
}

var (
	webServers  = []host{newHost("192.0.2.10"), newHost("192.0.2.11"), newHost("192.0.2.12"), newHost("198.51.100.80")}
	ftpServers  = []host{newHost("192.0.2.21"), newHost("198.51.100.21")}
	mailServer  = newHost("192.0.2.25")
	tftpServer  = newHost("192.0.2.69")
	textExts    = []string{".txt", ".html", ".csv", ".json", ".log", ".js"}
	binaryExts  = []string{".bin", ".zip", ".jpg", ".png", ".pdf", ".iso"}
	clientCount = 40
)

func clientHost(i int) host { return newHost(fmt.Sprintf("10.1.%d.%d", i/200, 10+i%200)) }

// logUniform returns a size between lo and hi whose logarithm is uniform.
func logUniform(rng *rand.Rand, lo, hi float64) int {
	return int(math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo))))
}

// mixOptions say what the large capture carries.
type mixOptions struct {
	target    int64           // bytes of objects, at least
	maxObject float64         // largest object (5e7)
	protocols map[string]bool // the protocols of the sessions
}

// plan returns sessions whose objects hold at least target bytes: the
// capture, with headers and ACKs, is larger. Sessions are HTTP (55%),
// FTP (37%), SMTP (4%) and TFTP (4%), less those left out. Objects are
// 1 KB to maxObject (50 MB), log-uniform (median about 220 KB); mail
// attachments up to 5 MB and TFTP files up to 4 MB (512-byte blocks
// numbered in 16 bits).
func plan(rng *rand.Rand, opt mixOptions) []planned {
	var out []planned
	var total int64
	n := 0
	newSpec := func(maxSize float64, textShare float64) spec {
		n++
		maxSize = min(maxSize, opt.maxObject)
		sp := spec{size: logUniform(rng, 1e3, maxSize), seed: rng.Uint64(), text: rng.Float64() < textShare}
		exts := binaryExts
		if sp.text {
			exts = textExts
		}
		sp.name = fmt.Sprintf("%s-%05d%s", words[rng.IntN(len(words))], n, exts[rng.IntN(len(exts))])
		total += int64(sp.size)
		return sp
	}
	for total < opt.target {
		p := planned{client: clientHost(rng.IntN(clientCount))}
		r := rng.Float64()
		switch {
		case r < 0.55:
			p.proto = "http"
		case r < 0.92:
			p.proto = "ftp"
		case r < 0.96:
			p.proto = "smtp"
		default:
			p.proto = "tftp"
		}
		if !opt.protocols[p.proto] {
			continue
		}
		switch p.proto {
		case "http":
			p.server = webServers[rng.IntN(len(webServers))]
			for range 1 + rng.IntN(6) {
				sp := newSpec(5e7, 0.35)
				sp.gzip = sp.text && rng.IntN(2) == 0
				sp.chunked = rng.Float64() < 0.35
				p.specs = append(p.specs, sp)
			}
		case "ftp":
			p.server = ftpServers[rng.IntN(len(ftpServers))]
			for range 1 + rng.IntN(4) {
				sp := newSpec(5e7, 0.2)
				sp.upload = rng.Float64() < 0.2
				p.specs = append(p.specs, sp)
			}
		case "smtp":
			p.server = mailServer
			for range 1 + rng.IntN(2) {
				p.specs = append(p.specs, newSpec(5e6, 0.3))
			}
		case "tftp":
			p.server = tftpServer
			p.specs = []spec{newSpec(4e6, 0.3)}
		}
		out = append(out, p)
	}
	return out
}

// play returns the session's packets as a sequence.
func (p planned) play(ports *portCounter, clock *time.Time, seed uint64, found func(*object)) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		// Once the consumer stops, every later frame is refused without
		// calling yield again.
		stopped := false
		out := func(b []byte) bool {
			stopped = stopped || !yield(b)
			return !stopped
		}
		s := &session{f: newFramer(), out: out, rng: rand.New(rand.NewPCG(seed, 0x5eed)), client: p.client, server: p.server,
			ports: ports, found: found, now: *clock}
		switch p.proto {
		case "http":
			s.http(p.specs)
		case "ftp":
			s.ftp(p.specs, ftpOptions{})
		case "smtp":
			s.smtp(p.specs)
		case "tftp":
			s.tftp(p.specs[0])
		}
	}
}

// writeMix writes the large capture to path and returns the objects it
// carries, its size and frame count.
func writeMix(path string, seed uint64, opt mixOptions) ([]*object, int64, int, error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	sessions := plan(rng, opt)
	cf, err := createCapture(path, time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), rand.New(rand.NewPCG(seed, 2)))
	if err != nil {
		return nil, 0, 0, err
	}
	var objs []*object
	found := func(o *object) {
		o.data = nil // keep the digest, let the bytes go
		objs = append(objs, o)
	}
	ports := &portCounter{}
	type active struct {
		next func() ([]byte, bool)
		stop func()
	}
	var open []active
	defer func() {
		for _, a := range open {
			a.stop()
		}
	}()
	pick := rand.New(rand.NewPCG(seed, 3))
	next := 0
	for next < len(sessions) || len(open) > 0 {
		for len(open) < concurrent && next < len(sessions) {
			nx, stop := iter.Pull(sessions[next].play(ports, &cf.now, rng.Uint64(), found))
			open = append(open, active{nx, stop})
			next++
		}
		i := pick.IntN(len(open))
		frame, ok := open[i].next()
		if !ok {
			open[i].stop()
			open = append(open[:i], open[i+1:]...)
			continue
		}
		if !cf.write(frame) {
			break
		}
	}
	size, err := cf.close()
	if err != nil {
		return nil, 0, 0, err
	}
	return objs, size, cf.n, nil
}
