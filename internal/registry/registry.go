// Package registry serves the OCI distribution API, the protocol of docker,
// crane and skopeo, at https://registry.<domain>/v2/ over the noops image
// store: standard tools push images that `noops deploy --image` then runs,
// and pull any image the store holds.
//
// The API version check and blob reads (GET and HEAD, with ranges) are
// go-containerregistry's registry (pkg/registry) with a blob handler over
// the store's blobs. Uploads, manifests, tags and the catalog are handled
// here, because ggcr's registry keeps manifests in a map in memory (lost
// on a restart, never in the image store) and buffers every chunked upload
// whole in memory, and neither can be redirected. Uploads stream to files
// under Config.Dir with a size limit; a pushed manifest is checked against
// the blobs it names and written into the image store (Images.Put), named
// "registry/<repo>:<tag>", or "registry/<repo>@<digest>" when pushed by
// digest, so that it survives a restart and can be deployed. A manifest
// of the store is served by digest whatever repository names it.
//
// Every request needs HTTP basic credentials: user "noops" and the token
// kept in Config.Dir/token. Failed attempts are limited per client address.
package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HostLabel is the host name label the registry is served at:
// https://registry.<domain>.
const HostLabel = "registry"

// Host is the registry's host name under domain.
func Host(domain string) string {
	return HostLabel + "." + strings.Trim(strings.ToLower(domain), ".")
}

// refPrefix starts the image store names of everything pushed to the registry.
const refPrefix = "registry/"

// Ref is the image store's name for repo:tag pushed to the registry.
func Ref(repo, tag string) string { return refPrefix + repo + ":" + tag }

// DigestRef is the image store's name for a manifest pushed to repo by
// digest (an index's images are).
func DigestRef(repo string, d v1.Hash) string { return refPrefix + repo + "@" + d.String() }

// Tagged reports whether ref is an image store name the registry gave a
// tag (Ref), as opposed to a manifest pushed by digest (DigestRef) or a
// name that is not the registry's. The image store's garbage collection
// keeps the images of tags, and the manifests a tagged index lists.
func Tagged(ref string) bool {
	rest, ok := strings.CutPrefix(ref, refPrefix)
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, ':')
	return i > 0 && !strings.ContainsRune(rest, '@') && ValidRepo(rest[:i]) && ValidTag(rest[i+1:])
}

// Limits.
const (
	DefaultMaxBlob = 10 << 30 // largest blob a push may upload
	maxManifest    = 4 << 20  // largest manifest, as in the distribution registry
	maxConfig      = 8 << 20  // largest image config read into memory
	maxSessions    = 64       // uploads in progress at once
	sessionIdle    = time.Hour
	stagedTTL      = 24 * time.Hour // an uploaded blob no manifest named is removed on start after this
)

// Images is the image store as the registry writes to it.
type Images interface {
	// Put writes img (its layers, config and manifest) and names it ref.
	Put(img v1.Image, ref string) (v1.Hash, error)
}

// Config says where the registry keeps its files and what it serves.
type Config struct {
	Dir    string // DATA/registry: the token, uploads in progress, blobs waiting for their manifest
	Layout string // the image store's folder, an OCI image layout, read for blobs, manifests and names
	Images Images // the image store in Layout, written through Put
	// MaxBlob is the largest blob a push may upload (default 10 GiB).
	MaxBlob int64
	// Failed sign-ins per client address: FailureBurst at once, then one
	// more every FailureRefill (defaults 10 and 6s).
	FailureBurst  int
	FailureRefill time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// Registry is the registry's HTTP handler. Its methods are safe for
// concurrent use; it starts no goroutines.
type Registry struct {
	cfg     Config
	log     *slog.Logger
	token   string
	blobs   *blobStore
	ggcr    http.Handler
	limit   *limiter
	uploads *uploads
}

// New opens the registry's folder, creating the token on first use, and
// clears what an earlier server left: uploads in progress, and uploaded
// blobs that a manifest stored since or that nothing named for a day.
func New(cfg Config) (*Registry, error) {
	if cfg.Dir == "" || cfg.Layout == "" || cfg.Images == nil {
		return nil, errors.New("registry: Dir, Layout and Images are required")
	}
	if cfg.MaxBlob <= 0 {
		cfg.MaxBlob = DefaultMaxBlob
	}
	if cfg.FailureBurst <= 0 {
		cfg.FailureBurst = 10
	}
	if cfg.FailureRefill <= 0 {
		cfg.FailureRefill = 6 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating registry folder: %w", err)
	}
	log := cfg.Logger.With("component", "registry")
	token, err := loadToken(cfg.Dir, log)
	if err != nil {
		return nil, err
	}
	b := &blobStore{staged: filepath.Join(cfg.Dir, "blobs", "sha256"), layout: cfg.Layout}
	up := &uploads{dir: filepath.Join(cfg.Dir, "uploads"), sessions: map[string]*session{}}
	for _, d := range []string{b.staged, up.dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating registry folder: %w", err)
		}
	}
	if err := up.clear(); err != nil {
		return nil, fmt.Errorf("removing unfinished uploads: %w", err)
	}
	if err := b.prune(cfg.Now().Add(-stagedTTL)); err != nil {
		return nil, fmt.Errorf("removing stale uploaded blobs: %w", err)
	}
	r := &Registry{
		cfg:     cfg,
		log:     log,
		token:   token,
		blobs:   b,
		limit:   newLimiter(cfg.FailureBurst, cfg.FailureRefill, cfg.Now),
		uploads: up,
	}
	r.ggcr = ggcr.New(ggcr.WithBlobHandler(b), ggcr.Logger(slog.NewLogLogger(log.Handler(), slog.LevelDebug)))
	return r, nil
}

// Token is the password of user "noops".
func (r *Registry) Token() string { return r.token }

// ServeHTTP serves the distribution API to authenticated clients.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if !r.authorized(w, req) {
		return
	}
	if err := r.route(w, req); err != nil {
		r.writeError(w, req, err)
	}
}

// The kinds of API paths.
const (
	pathUnknown     = iota
	pathBase        // /v2/
	pathCatalog     // /v2/_catalog
	pathBlob        // /v2/<name>/blobs/<digest>
	pathUploadStart // /v2/<name>/blobs/uploads/
	pathUpload      // /v2/<name>/blobs/uploads/<id>
	pathManifest    // /v2/<name>/manifests/<reference>
	pathTags        // /v2/<name>/tags/list
)

// apiPath is a parsed API path.
type apiPath struct {
	kind int
	repo string
	ref  string // digest, tag or upload id
}

// parsePath splits an API path. The repository name may have slashes, so
// the path is read from its end, as ggcr's registry does.
func parsePath(p string) apiPath {
	switch p {
	case "/v2", "/v2/":
		return apiPath{kind: pathBase}
	case "/v2/_catalog":
		return apiPath{kind: pathCatalog}
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return apiPath{}
	}
	e := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	n := len(e)
	join := func(k int) string { return strings.Join(e[:k], "/") }
	switch {
	case n >= 3 && e[n-2] == "blobs" && e[n-1] == "uploads":
		return apiPath{kind: pathUploadStart, repo: join(n - 2)}
	case n >= 4 && e[n-3] == "blobs" && e[n-2] == "uploads":
		return apiPath{kind: pathUpload, repo: join(n - 3), ref: e[n-1]}
	case n >= 3 && e[n-2] == "blobs":
		return apiPath{kind: pathBlob, repo: join(n - 2), ref: e[n-1]}
	case n >= 3 && e[n-2] == "manifests":
		return apiPath{kind: pathManifest, repo: join(n - 2), ref: e[n-1]}
	case n >= 3 && e[n-2] == "tags" && e[n-1] == "list":
		return apiPath{kind: pathTags, repo: join(n - 2)}
	}
	return apiPath{}
}

// Names, as the distribution spec has them.
var (
	repoRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ValidRepo reports whether repo is a repository name the registry accepts.
func ValidRepo(repo string) bool { return len(repo) <= 255 && repoRE.MatchString(repo) }

// ValidTag reports whether tag is a tag the registry accepts.
func ValidTag(tag string) bool { return tagRE.MatchString(tag) }

func (r *Registry) route(w http.ResponseWriter, req *http.Request) error {
	p := parsePath(req.URL.Path)
	if p.kind != pathUnknown && p.kind != pathBase && p.kind != pathCatalog && !ValidRepo(p.repo) {
		return apiErr(http.StatusBadRequest, "NAME_INVALID", "repository name %q is not valid: use lower-case letters, digits and separators (. _ - /)", p.repo)
	}
	m := req.Method
	switch {
	case p.kind == pathBase && (m == http.MethodGet || m == http.MethodHead),
		p.kind == pathBlob && (m == http.MethodGet || m == http.MethodHead):
		if p.kind == pathBlob {
			if _, err := parseDigest(p.ref); err != nil {
				return err
			}
		}
		r.ggcr.ServeHTTP(w, req)
		return nil
	case p.kind == pathCatalog && m == http.MethodGet:
		return r.catalog(w, req)
	case p.kind == pathUploadStart && m == http.MethodPost:
		return r.startUpload(w, req, p.repo)
	case p.kind == pathUpload && (m == http.MethodPatch || m == http.MethodPut || m == http.MethodGet || m == http.MethodDelete):
		return r.upload(w, req, p)
	case p.kind == pathManifest && (m == http.MethodGet || m == http.MethodHead):
		return r.getManifest(w, req, p.repo, p.ref)
	case p.kind == pathManifest && m == http.MethodPut:
		return r.putManifest(w, req, p.repo, p.ref)
	case p.kind == pathTags && m == http.MethodGet:
		return r.tags(w, req, p.repo)
	case (p.kind == pathManifest || p.kind == pathBlob) && m == http.MethodDelete:
		return apiErr(http.StatusMethodNotAllowed, "UNSUPPORTED", "deleting is not supported: push another image to the tag; images no release uses are garbage-collected")
	case p.kind == pathUnknown:
		return apiErr(http.StatusNotFound, "NOT_FOUND", "no registry API at %s", req.URL.Path)
	}
	return apiErr(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s is not supported on %s", m, req.URL.Path)
}

// parseDigest reads a sha256 digest from a path or query.
func parseDigest(s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil || h.Algorithm != "sha256" {
		return v1.Hash{}, apiErr(http.StatusBadRequest, "DIGEST_INVALID", "%q is not a sha256 digest", truncate(s, 80))
	}
	return h, nil
}

// apiError is an error answered with a distribution spec error body.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func apiErr(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// writeError answers err: an apiError as it is, a full disk as 507, and
// anything else as a 500 whose cause goes to the log, not to the client.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		r.log.Error("registry: the disk is full", "method", req.Method, "path", req.URL.Path, "err", err)
		ae = apiErr(http.StatusInsufficientStorage, "UNKNOWN", "the server's disk is full")
	default:
		r.log.Error("registry request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		ae = apiErr(http.StatusInternalServerError, "UNKNOWN", "the server could not complete the request; its log has the details")
	}
	writeAPIError(w, ae)
}

func writeAPIError(w http.ResponseWriter, ae *apiError) {
	type entry struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Errors []entry `json:"errors"`
	}{[]entry{{ae.code, ae.message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)+1))
	w.WriteHeader(ae.status)
	_, _ = w.Write(append(body, '\n'))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
