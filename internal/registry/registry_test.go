package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// sameImage fails unless got has want's manifest, config and layers, byte
// for byte.
func sameImage(t *testing.T, got, want v1.Image) {
	t.Helper()
	for _, c := range []struct {
		what string
		get  func(v1.Image) ([]byte, error)
	}{
		{"manifest", func(i v1.Image) ([]byte, error) { return i.RawManifest() }},
		{"config", func(i v1.Image) ([]byte, error) { return i.RawConfigFile() }},
	} {
		g, err := c.get(got)
		if err != nil {
			t.Fatalf("reading pulled %s: %v", c.what, err)
		}
		w, _ := c.get(want)
		if !bytes.Equal(g, w) {
			t.Fatalf("pulled %s differs:\n%s\nwant:\n%s", c.what, g, w)
		}
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatalf("pulled layers: %v", err)
	}
	wl, _ := want.Layers()
	if len(gl) != len(wl) {
		t.Fatalf("pulled %d layers, want %d", len(gl), len(wl))
	}
	for i := range gl {
		g, w := compressed(t, gl[i]), compressed(t, wl[i])
		if !bytes.Equal(g, w) {
			t.Errorf("layer %d: pulled %d bytes that differ from the %d pushed", i, len(g), len(w))
		}
	}
}

func compressed(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomImage(t *testing.T, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPushPullImage(t *testing.T) {
	tr := newTestRegistry(t, nil)
	docker := randomImage(t, 3000, 3)
	oci := mutate.MediaType(mutate.ConfigMediaType(randomImage(t, 2000, 2), types.OCIConfigJSON), types.OCIManifestSchema1)
	for _, tc := range []struct {
		name, repo string
		img        v1.Image
	}{
		{"docker manifest", "team/app", docker},
		{"oci manifest", "oci", oci},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := tr.ref(tc.repo + ":v1")
			if err := crane.Push(tc.img, ref, tr.crane()...); err != nil {
				t.Fatalf("crane.Push: %v", err)
			}
			pulled, err := crane.Pull(ref, tr.crane()...)
			if err != nil {
				t.Fatalf("crane.Pull: %v", err)
			}
			sameImage(t, pulled, tc.img)
			want, _ := tc.img.Digest()

			// The image is in the store under the registry's name, and
			// pulls by digest too.
			d, ok, err := tr.store.Resolve(Ref(tc.repo, "v1"))
			if err != nil || !ok || d != want {
				t.Errorf("store.Resolve(%q) = %v, %v, %v, want %v", Ref(tc.repo, "v1"), d, ok, err, want)
			}
			if _, err := tr.store.Get(want); err != nil {
				t.Errorf("store.Get(%v): %v", want, err)
			}
			byDigest, err := crane.Pull(tr.ref(tc.repo+"@"+want.String()), tr.crane()...)
			if err != nil {
				t.Fatalf("crane.Pull by digest: %v", err)
			}
			sameImage(t, byDigest, tc.img)
		})
	}
	// The uploaded blobs moved into the store: nothing waits in staging.
	if left := tr.files("blobs/sha256"); len(left) != 0 {
		t.Errorf("staged blobs left after the manifests were stored: %v", left)
	}
	if left := tr.files("uploads"); len(left) != 0 {
		t.Errorf("upload files left: %v", left)
	}
}

func TestPushPullIndex(t *testing.T) {
	tr := newTestRegistry(t, nil)
	idx, err := random.Index(1000, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(tr.ref("multi:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, tr.remote()...); err != nil {
		t.Fatalf("remote.WriteIndex: %v", err)
	}
	raw, err := crane.Manifest(ref.String(), tr.crane()...)
	if err != nil {
		t.Fatalf("crane.Manifest: %v", err)
	}
	want, _ := idx.RawManifest()
	if !bytes.Equal(raw, want) {
		t.Fatalf("pulled index differs:\n%s\nwant:\n%s", raw, want)
	}
	pulled, err := remote.Index(ref, tr.remote()...)
	if err != nil {
		t.Fatalf("remote.Index: %v", err)
	}
	im, _ := idx.IndexManifest()
	for _, desc := range im.Manifests {
		img, err := pulled.Image(desc.Digest)
		if err != nil {
			t.Fatalf("pulled index's image %s: %v", desc.Digest, err)
		}
		orig, _ := idx.Image(desc.Digest)
		sameImage(t, img, orig)
	}
	d, _ := idx.Digest()
	if got, ok, _ := tr.store.Resolve(Ref("multi", "v1")); !ok || got != d {
		t.Errorf("store.Resolve(multi:v1) = %v, %v, want the index %v", got, ok, d)
	}
	// Its images were pushed by digest and are named so in the store.
	if _, ok, _ := tr.store.Resolve(DigestRef("multi", im.Manifests[0].Digest)); !ok {
		t.Errorf("the index's image %s is not named in the store", im.Manifests[0].Digest)
	}
}

func TestListTagsAndCatalog(t *testing.T) {
	tr := newTestRegistry(t, nil)
	img := randomImage(t, 100, 1)
	for _, ref := range []string{"a/b:v2", "a/b:v1", "a/b:latest", "c:x"} {
		if err := crane.Push(img, tr.ref(ref), tr.crane()...); err != nil {
			t.Fatalf("crane.Push %s: %v", ref, err)
		}
	}
	tags, err := crane.ListTags(tr.ref("a/b"), tr.crane()...)
	if err != nil {
		t.Fatalf("crane.ListTags: %v", err)
	}
	if want := []string{"latest", "v1", "v2"}; !reflect.DeepEqual(tags, want) {
		t.Errorf("ListTags(a/b) = %q, want %q", tags, want)
	}
	repos, err := crane.Catalog(tr.host, tr.crane()...)
	if err != nil {
		t.Fatalf("crane.Catalog: %v", err)
	}
	if want := []string{"a/b", "c"}; !reflect.DeepEqual(repos, want) {
		t.Errorf("Catalog = %q, want %q", repos, want)
	}
	res, body := tr.authed("GET", "/v2/a/b/tags/list?n=2", nil, nil)
	if res.StatusCode != 200 || !strings.Contains(body, `"tags":["latest","v1"]`) || !strings.Contains(res.Header.Get("Link"), "last=v1") {
		t.Errorf("tags/list?n=2 = %d %s Link %q, want the first two tags and a next link", res.StatusCode, body, res.Header.Get("Link"))
	}
	res, body = tr.authed("GET", "/v2/a/b/tags/list?last=v1", nil, nil)
	if res.StatusCode != 200 || !strings.Contains(body, `"tags":["v2"]`) {
		t.Errorf("tags/list?last=v1 = %d %s, want [v2]", res.StatusCode, body)
	}
	if res, body := tr.authed("GET", "/v2/nope/tags/list", nil, nil); res.StatusCode != 404 || !strings.Contains(body, "NAME_UNKNOWN") {
		t.Errorf("tags/list of an unknown repository = %d %s, want 404 NAME_UNKNOWN", res.StatusCode, body)
	}
}

func TestAuthentication(t *testing.T) {
	tr := newTestRegistry(t, nil)
	token := tr.reg.Token()
	paths := []struct{ method, path string }{
		{"GET", "/v2/"},
		{"GET", "/v2/_catalog"},
		{"HEAD", "/v2/a/blobs/sha256:" + strings.Repeat("0", 64)},
		{"POST", "/v2/a/blobs/uploads/"},
		{"PUT", "/v2/a/manifests/v1"},
		{"GET", "/v2/a/tags/list"},
		{"GET", "/nothing"},
	}
	creds := []struct {
		name, user, pass string
	}{
		{"no credentials", "", ""},
		{"wrong token", User, token + "x"},
		{"wrong user", "admin", token},
		{"empty token", User, ""},
	}
	for _, c := range creds {
		for _, p := range paths {
			t.Run(c.name+" "+p.method+" "+p.path, func(t *testing.T) {
				tr.clock.Advance(time.Hour) // no rate limiting here
				res, body := tr.do(p.method, p.path, nil, nil, c.user, c.pass)
				if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != `Basic realm="noops"` {
					t.Errorf("%s %s = %d WWW-Authenticate %q, want 401 with a Basic challenge", p.method, p.path, res.StatusCode, res.Header.Get("WWW-Authenticate"))
				}
				if p.method != "HEAD" && !strings.Contains(body, "UNAUTHORIZED") {
					t.Errorf("%s %s body %q, want an UNAUTHORIZED error", p.method, p.path, body)
				}
			})
		}
	}
	if res, _ := tr.authed("GET", "/v2/", nil, nil); res.StatusCode != 200 || res.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("GET /v2/ with the token = %d %v, want 200 with the API version", res.StatusCode, res.Header)
	}
	if err := crane.Push(randomImage(t, 10, 1), tr.ref("x:y"), tr.crane(authn.Anonymous)...); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("anonymous crane.Push = %v, want 401", err)
	}
	if log := tr.logs.String(); strings.Contains(log, token+"x") || !strings.Contains(log, "failed sign-in") {
		t.Errorf("log shows a password or no failed sign-in:\n%s", log)
	}
}

func TestRateLimit(t *testing.T) {
	tr := newTestRegistry(t, func(c *Config) { c.FailureBurst, c.FailureRefill = 3, time.Minute })
	token := tr.reg.Token()
	get := func(pass string) int {
		res, _ := tr.do("GET", "/v2/", nil, nil, User, pass)
		return res.StatusCode
	}
	for i := range 3 {
		if got := get("guess" + fmt.Sprint(i)); got != 401 {
			t.Fatalf("wrong token attempt %d = %d, want 401", i+1, got)
		}
	}
	res, body := tr.do("GET", "/v2/", nil, nil, User, "guess4")
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "60" || !strings.Contains(body, "TOOMANYREQUESTS") {
		t.Fatalf("4th wrong attempt = %d Retry-After %q %s, want 429 after 60s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	// While refused, even the right token gets no answer about itself.
	if got := get(token); got != http.StatusTooManyRequests {
		t.Errorf("right token while refused = %d, want 429", got)
	}
	tr.clock.Advance(time.Minute) // one attempt comes back
	if got := get(token); got != 200 {
		t.Errorf("right token after a minute = %d, want 200", got)
	}
	if got := get("guess5"); got != 401 {
		t.Errorf("wrong token after a minute = %d, want 401", got)
	}
	if got := get("guess6"); got != http.StatusTooManyRequests {
		t.Errorf("second wrong token after a minute = %d, want 429", got)
	}
	if log := tr.logs.String(); strings.Contains(log, "guess") {
		t.Errorf("the log shows a password:\n%s", log)
	}
}

func TestLimiterPerClient(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	l := newLimiter(2, time.Second, clock.Now)
	l.fail("10.0.0.1")
	l.fail("10.0.0.1")
	if _, blocked := l.blocked("10.0.0.1"); !blocked {
		t.Errorf("10.0.0.1 after 2 failures: not blocked")
	}
	if _, blocked := l.blocked("10.0.0.2"); blocked {
		t.Errorf("10.0.0.2 blocked by another client's failures")
	}
	clock.Advance(10 * time.Second)
	if _, blocked := l.blocked("10.0.0.1"); blocked {
		t.Errorf("10.0.0.1 still blocked after its bucket refilled")
	}
	if left := l.fail("10.0.0.1"); left != 1 {
		t.Errorf("fail after refill left %d attempts, want 1 (the burst caps the refill)", left)
	}
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"not-an-address", "not-an-address"},
	} {
		if got := clientKey(tc.in); got != tc.want {
			t.Errorf("clientKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRestartServesPushedImages(t *testing.T) {
	tr := newTestRegistry(t, nil)
	img := randomImage(t, 2048, 2)
	if err := crane.Push(img, tr.ref("app:v1"), tr.crane()...); err != nil {
		t.Fatalf("crane.Push: %v", err)
	}
	// A blob uploaded without its manifest yet survives a restart too.
	layer, err := random.Layer(512, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Upload(layer, tr.ref("app"), tr.crane()...); err != nil {
		t.Fatalf("crane.Upload: %v", err)
	}
	token := tr.reg.Token()
	tr.restart()
	if tr.reg.Token() != token {
		t.Errorf("token after restart = %q, want the first one", tr.reg.Token())
	}
	pulled, err := crane.Pull(tr.ref("app:v1"), tr.crane()...)
	if err != nil {
		t.Fatalf("crane.Pull after restart: %v", err)
	}
	sameImage(t, pulled, img)
	ld, _ := layer.Digest()
	res, _ := tr.authed("HEAD", "/v2/app/blobs/"+ld.String(), nil, nil)
	if res.StatusCode != 200 {
		t.Errorf("HEAD of an uploaded blob after restart = %d, want 200", res.StatusCode)
	}
}

func TestStalePruning(t *testing.T) {
	tr := newTestRegistry(t, nil)
	layer, _ := random.Layer(100, types.DockerLayer)
	if err := crane.Upload(layer, tr.ref("app"), tr.crane()...); err != nil {
		t.Fatalf("crane.Upload: %v", err)
	}
	res, _ := tr.authed("POST", "/v2/app/blobs/uploads/", nil, nil)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST uploads = %d", res.StatusCode)
	}
	if n := len(tr.files("uploads")); n != 1 {
		t.Fatalf("%d upload files, want 1", n)
	}
	tr.clock.Advance(stagedTTL + time.Hour)
	tr.restart()
	if left := append(tr.files("uploads"), tr.files("blobs/sha256")...); len(left) != 0 {
		t.Errorf("after a restart a day later: left %v, want the unfinished upload and the unused blob gone", left)
	}
}

// manifestJSON is an image manifest naming a config and layers by digest and size.
func manifestJSON(config v1.Descriptor, layers ...v1.Descriptor) []byte {
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: config, Layers: layers}
	b, _ := json.Marshal(m)
	return b
}

// uploadBlob pushes b as a blob of repo and returns its descriptor.
func (tr *testRegistry) uploadBlob(repo string, b []byte, mt types.MediaType) v1.Descriptor {
	tr.t.Helper()
	d, _, _ := v1.SHA256(bytes.NewReader(b))
	res, body := tr.authed("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), bytes.NewReader(b), nil)
	if res.StatusCode != http.StatusCreated {
		tr.t.Fatalf("monolithic upload = %d %s", res.StatusCode, body)
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
}

func TestManifestRefusals(t *testing.T) {
	tr := newTestRegistry(t, nil)
	cfg := tr.uploadBlob("app", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), types.OCIConfigJSON)
	layer := tr.uploadBlob("app", []byte("not really a tarball"), types.OCILayer)
	helm := tr.uploadBlob("app", []byte(`{"name":"chart"}`), "application/vnd.cncf.helm.config.v1+json")
	notJSON := tr.uploadBlob("app", []byte("not json"), types.OCIConfigJSON)
	missing := v1.Descriptor{MediaType: types.OCILayer, Size: 3, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}}
	good := manifestJSON(cfg, layer)
	goodDigest, _, _ := v1.SHA256(bytes.NewReader(good))
	wrongSize := layer
	wrongSize.Size++
	missingChild := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":10}]}`,
		types.OCIImageIndex, types.OCIManifestSchema1, missing.Digest)
	ociType := http.Header{"Content-Type": {string(types.OCIManifestSchema1)}}
	tests := []struct {
		name   string
		ref    string
		body   []byte
		header http.Header
		status int
		code   string
	}{
		{"missing layer", "v1", manifestJSON(cfg, layer, missing), ociType, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"missing config", "v1", manifestJSON(missing, layer), ociType, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"wrong layer size", "v1", manifestJSON(cfg, wrongSize), ociType, 400, "MANIFEST_INVALID"},
		{"not an image config", "v1", manifestJSON(helm, layer), ociType, 400, "MANIFEST_INVALID"},
		{"config not json", "v1", manifestJSON(notJSON, layer), ociType, 400, "MANIFEST_INVALID"},
		{"index of a missing manifest", "v1", []byte(missingChild), http.Header{"Content-Type": {string(types.OCIImageIndex)}}, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"not json", "v1", []byte("hello"), ociType, 400, "MANIFEST_INVALID"},
		{"schema 1", "v1", []byte(`{"schemaVersion":1,"name":"x","tag":"y"}`), nil, 400, "MANIFEST_INVALID"},
		{"content type contradicts", "v1", good, http.Header{"Content-Type": {string(types.DockerManifestSchema2)}}, 400, "MANIFEST_INVALID"},
		{"unsupported media type", "v1", []byte(`{"schemaVersion":2,"mediaType":"application/x-thing"}`), nil, 400, "MANIFEST_INVALID"},
		{"digest does not match", "sha256:" + strings.Repeat("0", 64), good, ociType, 400, "DIGEST_INVALID"},
		{"bad tag", ".hidden", good, ociType, 400, "TAG_INVALID"},
		{"too large", "v1", bytes.Repeat([]byte(" "), maxManifest+1), ociType, 413, "SIZE_INVALID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := tr.authed("PUT", "/v2/app/manifests/"+tc.ref, bytes.NewReader(tc.body), tc.header)
			if res.StatusCode != tc.status || !strings.Contains(body, tc.code) {
				t.Errorf("PUT manifest = %d %s, want %d %s", res.StatusCode, body, tc.status, tc.code)
			}
		})
	}
	if _, ok, _ := tr.store.Resolve(Ref("app", "v1")); ok {
		t.Errorf("a refused manifest was named in the store")
	}
	// The same manifest with its blobs all there is stored, by digest too.
	for _, ref := range []string{"v1", goodDigest.String()} {
		res, body := tr.authed("PUT", "/v2/app/manifests/"+ref, bytes.NewReader(good), ociType)
		if res.StatusCode != 201 || res.Header.Get("Docker-Content-Digest") != goodDigest.String() {
			t.Errorf("PUT good manifest as %s = %d %s, want 201 with digest %s", ref, res.StatusCode, body, goodDigest)
		}
	}
	res, body := tr.authed("GET", "/v2/app/manifests/v1", nil, nil)
	if res.StatusCode != 200 || body != string(good) || res.Header.Get("Content-Type") != string(types.OCIManifestSchema1) {
		t.Errorf("GET manifest = %d %q %s, want the pushed bytes", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if res, _ := tr.authed("DELETE", "/v2/app/manifests/v1", nil, nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE manifest = %d, want 405", res.StatusCode)
	}
}

func TestManifestWithoutMediaType(t *testing.T) {
	tr := newTestRegistry(t, nil)
	cfg := tr.uploadBlob("app", []byte(`{"os":"linux"}`), types.OCIConfigJSON)
	raw := []byte(fmt.Sprintf(`{"schemaVersion":2,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[]}`, cfg.MediaType, cfg.Digest, cfg.Size))
	d, _, _ := v1.SHA256(bytes.NewReader(raw))
	res, body := tr.authed("PUT", "/v2/app/manifests/bare", bytes.NewReader(raw), http.Header{"Content-Type": {string(types.OCIManifestSchema1)}})
	if res.StatusCode != 201 {
		t.Fatalf("PUT = %d %s", res.StatusCode, body)
	}
	for _, ref := range []string{"bare", d.String()} {
		res, body := tr.authed("GET", "/v2/app/manifests/"+ref, nil, nil)
		if res.StatusCode != 200 || body != string(raw) || res.Header.Get("Content-Type") != string(types.OCIManifestSchema1) {
			t.Errorf("GET %s = %d %q, want the OCI manifest", ref, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	// A layer blob is not a manifest.
	if res, body := tr.authed("GET", "/v2/app/manifests/"+cfg.Digest.String(), nil, nil); res.StatusCode != 404 || !strings.Contains(body, "MANIFEST_UNKNOWN") {
		t.Errorf("GET a config blob as a manifest = %d %s, want 404 MANIFEST_UNKNOWN", res.StatusCode, body)
	}
}

func TestBlobSizeLimit(t *testing.T) {
	tr := newTestRegistry(t, func(c *Config) { c.MaxBlob = 4 << 10 })
	img := randomImage(t, 64<<10, 1)
	err := crane.Push(img, tr.ref("big:v1"), tr.crane()...)
	if err == nil || !strings.Contains(err.Error(), "SIZE_INVALID") || !strings.Contains(err.Error(), "4 KiB") {
		t.Errorf("crane.Push of a 64 KiB layer with a 4 KiB limit = %v, want SIZE_INVALID naming the limit", err)
	}
	// (crane gives up on the config's upload, which ran at the same time,
	// half way: that session stays until it idles out.)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	if res, _ := tr.authed("HEAD", "/v2/big/blobs/"+ld.String(), nil, nil); res.StatusCode != 404 {
		t.Errorf("HEAD of the refused layer = %d, want 404", res.StatusCode)
	}
	// Exactly the limit is fine.
	tr.uploadBlob("big", bytes.Repeat([]byte("x"), 4<<10), types.OCILayer)
}

func TestUploads(t *testing.T) {
	tr := newTestRegistry(t, nil)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	res, body := tr.authed("POST", "/v2/app/blobs/uploads/", nil, nil)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusAccepted || !strings.HasPrefix(loc, "/v2/app/blobs/uploads/") {
		t.Fatalf("POST = %d %s Location %q", res.StatusCode, body, loc)
	}
	patch := func(from, to int, cr string) *http.Response {
		h := http.Header{}
		if cr != "" {
			h.Set("Content-Range", cr)
		}
		res, _ := tr.authed("PATCH", loc, bytes.NewReader(data[from:to]), h)
		return res
	}
	if res := patch(0, 4000, "0-3999"); res.StatusCode != 202 || res.Header.Get("Range") != "0-3999" {
		t.Fatalf("first PATCH = %d Range %q, want 202 0-3999", res.StatusCode, res.Header.Get("Range"))
	}
	if res := patch(5000, 6000, "5000-5999"); res.StatusCode != http.StatusRequestedRangeNotSatisfiable || res.Header.Get("Range") != "0-3999" {
		t.Errorf("PATCH with a gap = %d Range %q, want 416 0-3999", res.StatusCode, res.Header.Get("Range"))
	}
	if res := patch(4000, 9000, ""); res.StatusCode != 202 || res.Header.Get("Range") != "0-8999" {
		t.Fatalf("PATCH without Content-Range = %d Range %q, want 202 0-8999", res.StatusCode, res.Header.Get("Range"))
	}
	if res, _ := tr.authed("GET", loc, nil, nil); res.StatusCode != http.StatusNoContent || res.Header.Get("Range") != "0-8999" {
		t.Errorf("GET upload status = %d Range %q", res.StatusCode, res.Header.Get("Range"))
	}
	if res, _ := tr.authed("PUT", "/v2/other/blobs/uploads/"+loc[len("/v2/app/blobs/uploads/"):]+"?digest="+digest, nil, nil); res.StatusCode != 404 {
		t.Errorf("PUT of app's upload through another repository = %d, want 404", res.StatusCode)
	}
	res, body = tr.authed("PUT", loc+"?digest="+digest, bytes.NewReader(data[9000:]), nil)
	if res.StatusCode != http.StatusCreated || res.Header.Get("Docker-Content-Digest") != digest {
		t.Fatalf("PUT = %d %s, want 201", res.StatusCode, body)
	}
	if res, _ := tr.authed("PATCH", loc, strings.NewReader("x"), nil); res.StatusCode != 404 {
		t.Errorf("PATCH after the upload finished = %d, want 404", res.StatusCode)
	}

	res, _ = tr.authed("HEAD", "/v2/any/blobs/"+digest, nil, nil)
	if res.StatusCode != 200 || res.ContentLength != int64(len(data)) {
		t.Errorf("HEAD blob = %d length %d, want 200 %d", res.StatusCode, res.ContentLength, len(data))
	}
	res, body = tr.authed("GET", "/v2/app/blobs/"+digest, nil, http.Header{"Range": {"bytes=10-19"}})
	if res.StatusCode != http.StatusPartialContent || body != "0123456789" {
		t.Errorf("GET blob range = %d %q, want 206 0123456789", res.StatusCode, body)
	}
	res, body = tr.authed("GET", "/v2/app/blobs/"+digest, nil, nil)
	if res.StatusCode != 200 || body != string(data) {
		t.Errorf("GET blob = %d (%d bytes), want the uploaded bytes", res.StatusCode, len(body))
	}

	// A mount of a blob the registry has needs no upload.
	res, _ = tr.authed("POST", "/v2/other/blobs/uploads/?mount="+digest+"&from=app", nil, nil)
	if res.StatusCode != http.StatusCreated || res.Header.Get("Location") != "/v2/other/blobs/"+digest {
		t.Errorf("mount = %d Location %q, want 201", res.StatusCode, res.Header.Get("Location"))
	}

	// The wrong digest is refused and stores nothing.
	res, body = tr.authed("POST", "/v2/app/blobs/uploads/?digest=sha256:"+strings.Repeat("1", 64), strings.NewReader("abc"), nil)
	if res.StatusCode != 400 || !strings.Contains(body, "DIGEST_INVALID") {
		t.Errorf("upload with the wrong digest = %d %s, want 400 DIGEST_INVALID", res.StatusCode, body)
	}
	if res, _ := tr.authed("HEAD", "/v2/app/blobs/sha256:"+strings.Repeat("1", 64), nil, nil); res.StatusCode != 404 {
		t.Errorf("HEAD of the refused blob = %d, want 404", res.StatusCode)
	}

	// A cancelled upload is gone.
	res, _ = tr.authed("POST", "/v2/app/blobs/uploads/", nil, nil)
	loc = res.Header.Get("Location")
	if res, _ := tr.authed("DELETE", loc, nil, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE upload = %d, want 204", res.StatusCode)
	}
	if res, _ := tr.authed("GET", loc, nil, nil); res.StatusCode != 404 {
		t.Errorf("GET a cancelled upload = %d, want 404", res.StatusCode)
	}
	if left := tr.files("uploads"); len(left) != 0 {
		t.Errorf("upload files left: %v", left)
	}
}

func TestBadPaths(t *testing.T) {
	tr := newTestRegistry(t, nil)
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v2/UPPER/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a/../b/tags/list", 400, "NAME_INVALID"},
		{"GET", "/v2/a/blobs/sha512:" + strings.Repeat("0", 128), 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/blobs/nothex", 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/manifests/sha256:zz", 400, "DIGEST_INVALID"},
		{"GET", "/v2/a/manifests/missing", 404, "MANIFEST_UNKNOWN"},
		{"GET", "/v2/a/blobs/sha256:" + strings.Repeat("0", 64), 404, "BLOB_UNKNOWN"},
		{"GET", "/v2/a/something", 404, "NOT_FOUND"},
		{"POST", "/v2/a/manifests/v1", 405, "UNSUPPORTED"},
		{"DELETE", "/v2/a/blobs/sha256:" + strings.Repeat("0", 64), 405, "UNSUPPORTED"},
		{"PATCH", "/v2/a/blobs/uploads/nosuchid", 404, "BLOB_UPLOAD_UNKNOWN"},
		{"GET", "/v2/a/tags/list?n=x", 404, "NAME_UNKNOWN"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			res, body := tr.authed(tc.method, tc.path, nil, nil)
			if res.StatusCode != tc.status || !strings.Contains(body, tc.code) {
				t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, res.StatusCode, body, tc.status, tc.code)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want apiPath
	}{
		{"/v2/", apiPath{kind: pathBase}},
		{"/v2", apiPath{kind: pathBase}},
		{"/v2/_catalog", apiPath{kind: pathCatalog}},
		{"/v2/a/b/blobs/sha256:1", apiPath{kind: pathBlob, repo: "a/b", ref: "sha256:1"}},
		{"/v2/a/blobs/uploads/", apiPath{kind: pathUploadStart, repo: "a"}},
		{"/v2/a/blobs/uploads", apiPath{kind: pathUploadStart, repo: "a"}},
		{"/v2/a/b/c/blobs/uploads/id1", apiPath{kind: pathUpload, repo: "a/b/c", ref: "id1"}},
		{"/v2/a/manifests/v1", apiPath{kind: pathManifest, repo: "a", ref: "v1"}},
		{"/v2/blobs/manifests/v1", apiPath{kind: pathManifest, repo: "blobs", ref: "v1"}},
		{"/v2/a/tags/list", apiPath{kind: pathTags, repo: "a"}},
		{"/v2/manifests/v1", apiPath{}},
		{"/v3/a/manifests/v1", apiPath{}},
		{"/", apiPath{}},
	}
	for _, tc := range tests {
		if got := parsePath(tc.path); got != tc.want {
			t.Errorf("parsePath(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		repo string
		ok   bool
	}{
		{"app", true}, {"team/app", true}, {"a.b_c__d-e--f/g", true},
		{"", false}, {"App", false}, {"a//b", false}, {"a/", false}, {"-a", false}, {"a/../b", false}, {"a:b", false},
		{strings.Repeat("a", 256), false},
	} {
		if got := ValidRepo(tc.repo); got != tc.ok {
			t.Errorf("ValidRepo(%q) = %v, want %v", tc.repo, got, tc.ok)
		}
	}
	for _, tc := range []struct {
		tag string
		ok  bool
	}{
		{"v1", true}, {"latest", true}, {"1.2.3-rc_1", true}, {"_x", true}, {strings.Repeat("a", 128), true},
		{"", false}, {".x", false}, {"-x", false}, {"a:b", false}, {"a/b", false}, {strings.Repeat("a", 129), false},
	} {
		if got := ValidTag(tc.tag); got != tc.ok {
			t.Errorf("ValidTag(%q) = %v, want %v", tc.tag, got, tc.ok)
		}
	}
	if got := Host("Apps.Example.com."); got != "registry.apps.example.com" {
		t.Errorf("Host = %q", got)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	if got := DigestRef("a/b", d); got != "registry/a/b@sha256:"+d.Hex {
		t.Errorf("DigestRef = %q", got)
	}
	for _, tc := range []struct {
		ref  string
		want bool
	}{
		{Ref("a/b", "v1"), true}, {Ref("app", "latest"), true},
		{DigestRef("a/b", d), false}, {"noops.build/app:0123", false}, {"registry/app", false}, {"registry/:v1", false},
	} {
		if got := Tagged(tc.ref); got != tc.want {
			t.Errorf("Tagged(%q) = %v, want %v", tc.ref, got, tc.want)
		}
	}
}
