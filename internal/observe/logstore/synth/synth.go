// Package synth makes realistic gateway access-log records,
// deterministically from a seed, for the log store's benchmarks
// (BenchmarkAppend and bench/logs): a few apps with their hosts, paths with
// IDs and query strings, methods, statuses mostly 200, log-normal
// latencies and sizes, a few thousand client addresses with a skewed
// popularity, a dozen user agents, some signed-in users, a random trace ID
// per request and timestamps about a millisecond apart.
package synth

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"noops/internal/observe/logstore"
)

// Generator makes access records one after another.
type Generator struct {
	rng     *rand.Rand
	now     time.Time
	clients []string
	users   []string
	zipfIP  *rand.Zipf
	zipfID  *rand.Zipf
}

type app struct {
	name, host string
	weight     int
	routes     []route
}

type route struct {
	method  string
	weight  int
	size    float64 // median response bytes
	in      float64 // median request bytes (0: none)
	path    func(g *Generator) string
	referer bool
	static  bool // a file: its size depends on the path only
}

// staticSize is the size of a static file: a hash of its path around median.
func staticSize(path string, median float64) int64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(path); i++ {
		h = (h ^ uint64(path[i])) * 1099511628211
	}
	return int64(median * (0.5 + float64(h%1000)/1000))
}

var words = []string{"shoes", "red", "jacket", "winter", "sale", "phone", "case", "laptop", "bag", "coffee", "mug", "book",
	"garden", "chair", "lamp", "desk", "socks", "watch", "camera", "lens", "bike", "helmet", "tent", "sleeping+bag",
	"running", "yoga", "mat", "kettle", "tea", "headphones", "usb-c", "charger", "monitor", "keyboard", "mouse"}

var hashes = []string{"3f9a1c2e", "b71d04aa", "0c5e9f13", "e2a7b8d1", "91f0c3b6", "5d2e7a09", "a4c8e1f7", "7b3d9e2c"}

func (g *Generator) id() string   { return strconv.FormatUint(g.zipfID.Uint64()+1, 10) }
func (g *Generator) word() string { return words[g.rng.IntN(len(words))] }
func (g *Generator) page() string { return strconv.Itoa(1 + g.rng.IntN(12)) }
func (g *Generator) hash() string { return hashes[g.rng.IntN(len(hashes))] }
func (g *Generator) uuid() string { b := make([]byte, 16); g.fill(b); return uuidText(b) }
func (g *Generator) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func uuidText(b []byte) string {
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var apps = []app{
	{name: "shop", host: "shop.example.com", weight: 45, routes: []route{
		{"GET", 20, 18000, 0, func(g *Generator) string { return "/products/" + g.id() }, true, false},
		{"GET", 8, 9000, 0, func(g *Generator) string { return "/products/" + g.id() + "/reviews?page=" + g.page() }, true, false},
		{"GET", 10, 24000, 0, func(g *Generator) string { return "/search?q=" + g.word() + "&page=" + g.page() + "&sort=price" }, true, false},
		{"GET", 12, 48000, 0, func(g *Generator) string { return "/static/js/app." + g.hash() + ".js" }, true, true},
		{"GET", 8, 6000, 0, func(g *Generator) string { return "/static/css/main." + g.hash() + ".css" }, true, true},
		{"GET", 6, 3000, 0, func(*Generator) string { return "/cart" }, true, false},
		{"POST", 5, 900, 350, func(g *Generator) string { return "/cart/items" }, true, false},
		{"GET", 4, 12000, 0, func(g *Generator) string { return "/images/products/" + g.id() + "/thumb.webp" }, true, true},
		{"POST", 2, 1200, 2400, func(*Generator) string { return "/checkout" }, true, false},
		{"GET", 3, 2, 0, func(*Generator) string { return "/healthz" }, false, true},
	}},
	{name: "api", host: "api.example.com", weight: 35, routes: []route{
		{"GET", 20, 2400, 0, func(g *Generator) string { return "/v1/orders/" + g.id() }, false, false},
		{"GET", 12, 16000, 0, func(g *Generator) string {
			return "/v1/items?limit=50&offset=" + strconv.Itoa(50*g.rng.IntN(40))
		}, false, false},
		{"POST", 10, 700, 900, func(*Generator) string { return "/v1/orders" }, false, false},
		{"PUT", 4, 600, 800, func(g *Generator) string { return "/v1/orders/" + g.id() + "/status" }, false, false},
		{"DELETE", 2, 0, 0, func(g *Generator) string { return "/v1/sessions/" + g.uuid() }, false, false},
		{"GET", 6, 1200, 0, func(g *Generator) string { return "/v1/users/" + g.id() + "/profile" }, false, false},
		{"OPTIONS", 3, 0, 0, func(g *Generator) string { return "/v1/orders/" + g.id() }, false, false},
		{"GET", 3, 80, 0, func(*Generator) string { return "/v1/health" }, false, true},
	}},
	{name: "blog", host: "blog.example.com", weight: 12, routes: []route{
		{"GET", 10, 32000, 0, func(g *Generator) string {
			return "/posts/" + strconv.Itoa(2019+g.rng.IntN(8)) + "/" + g.word() + "-" + g.word()
		}, true, false},
		{"GET", 4, 14000, 0, func(g *Generator) string { return "/tags/" + g.word() + "?page=" + g.page() }, true, false},
		{"GET", 3, 8000, 0, func(*Generator) string { return "/feed.xml" }, false, true},
		{"HEAD", 1, 0, 0, func(*Generator) string { return "/" }, false, false},
	}},
	{name: "auth", host: "auth.example.com", weight: 8, routes: []route{
		{"POST", 6, 400, 300, func(*Generator) string { return "/login" }, true, false},
		{"GET", 6, 5000, 0, func(g *Generator) string {
			return "/oauth/authorize?client_id=web&state=" + g.uuid()[:8] + "&redirect_uri=https%3A%2F%2Fshop.example.com%2Fcb"
		}, true, false},
		{"POST", 4, 900, 500, func(*Generator) string { return "/oauth/token" }, false, false},
		{"GET", 2, 700, 0, func(*Generator) string { return "/.well-known/jwks.json" }, false, true},
	}},
}

var agents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	"curl/8.5.0",
	"python-requests/2.32.3",
	"Go-http-client/2.0",
	"okhttp/4.12.0",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"kube-probe/1.31",
}

// New returns a generator seeded with seed whose first record is stamped start.
func New(seed uint64, start time.Time) *Generator {
	g := &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: start}
	g.zipfIP = rand.NewZipf(g.rng, 1.1, 4, 2999)
	g.zipfID = rand.NewZipf(g.rng, 1.05, 2, 99999)
	for i := 0; i < 3000; i++ {
		if i%10 == 9 {
			g.clients = append(g.clients, fmt.Sprintf("2001:db8:%x:%x::%x", g.rng.IntN(64), g.rng.IntN(4096), g.rng.IntN(65536)))
		} else {
			nets := []string{"203.0", "198.51", "192.0.2", "100.64", "81.2", "93.184"}
			n := nets[g.rng.IntN(len(nets))]
			if n == "192.0.2" {
				g.clients = append(g.clients, fmt.Sprintf("%s.%d", n, 1+g.rng.IntN(254)))
			} else {
				g.clients = append(g.clients, fmt.Sprintf("%s.%d.%d", n, g.rng.IntN(256), 1+g.rng.IntN(254)))
			}
		}
	}
	for i := 0; i < 500; i++ {
		g.users = append(g.users, fmt.Sprintf("user-%05d@example.com", 1+g.rng.IntN(99999)))
	}
	return g
}

func pick[T any](g *Generator, xs []T, weight func(T) int) T {
	total := 0
	for _, x := range xs {
		total += weight(x)
	}
	n := g.rng.IntN(total)
	for _, x := range xs {
		if n -= weight(x); n < 0 {
			return x
		}
	}
	return xs[len(xs)-1]
}

func (g *Generator) lognormal(median, sigma float64) float64 {
	return median * math.Exp(sigma*g.rng.NormFloat64())
}

// Next returns the next record: an access record of one of the apps,
// about a millisecond (exponentially distributed, nanosecond precision)
// after the previous one.
func (g *Generator) Next() logstore.Record {
	g.now = g.now.Add(time.Duration(g.rng.ExpFloat64() * float64(time.Millisecond)))
	a := pick(g, apps, func(a app) int { return a.weight })
	rt := pick(g, a.routes, func(r route) int { return r.weight })
	status := 200
	switch x := g.rng.IntN(1000); {
	case x < 40 && rt.method == "GET":
		status = 304
	case x < 70:
		status = 404
	case x < 80:
		status = 401
	case x < 85:
		status = 500
	case x < 95:
		status = 302
	case rt.method == "POST" && x < 300:
		status = 201
	case rt.method == "DELETE" || rt.method == "OPTIONS":
		status = 204
	}
	path := rt.path(g)
	out := int64(0)
	switch {
	case status == 304 || status == 204 || rt.size == 0:
	case status >= 400:
		out = int64(g.lognormal(300, 0.3))
	case rt.static:
		out = staticSize(path, rt.size) // the same file, the same size
	default:
		out = int64(g.lognormal(rt.size, 0.6))
	}
	in := int64(0)
	if rt.in > 0 {
		in = int64(g.lognormal(rt.in, 0.5))
	}
	client := g.clients[g.zipfIP.Uint64()]
	user := ""
	if a.name == "api" || g.rng.IntN(5) == 0 {
		user = g.users[g.rng.IntN(len(g.users))]
	}
	ua := agents[g.rng.IntN(len(agents))]
	if a.name == "api" {
		ua = agents[6+g.rng.IntN(4)]
	}
	ref := ""
	if rt.referer && g.rng.IntN(5) < 2 {
		ref = "https://" + a.host + "/"
		if g.rng.IntN(2) == 0 {
			ref = "https://www.google.com/"
		}
	}
	proto := "HTTP/2.0"
	if g.rng.IntN(10) < 3 {
		proto = "HTTP/1.1"
	}
	var tid [16]byte
	g.fill(tid[:])
	return logstore.Record{
		Time: g.now, App: a.name, Stream: logstore.StreamAccess, TraceID: hex.EncodeToString(tid[:]),
		Access: &logstore.Access{Method: rt.method, Host: a.host, Path: path, Proto: proto, Status: status,
			Duration: time.Duration(g.lognormal(float64(12*time.Millisecond), 1.0)), BytesIn: in, BytesOut: out,
			Client: client, User: user, UserAgent: ua, Referer: ref},
	}
}
