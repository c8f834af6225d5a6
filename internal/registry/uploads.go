package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// uploads are the blob uploads in progress. Each streams to a file as it
// arrives, hashed on the way, and becomes a staged blob when the client
// finishes it with the digest it claims.
type uploads struct {
	dir string // DIR/uploads

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one upload in progress.
type session struct {
	id, repo, file string

	mu      sync.Mutex // held while a request appends; guards the fields below
	size    int64
	sum     hash.Hash // sha256 of the bytes so far
	touched time.Time
	broken  bool // a failed append left the file and sum out of step
}

// clear removes the files of uploads an earlier server left unfinished.
func (u *uploads) clear() error {
	des, err := os.ReadDir(u.dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if err := os.RemoveAll(filepath.Join(u.dir, de.Name())); err != nil {
			return err
		}
	}
	return nil
}

// open starts a session for repo; over maxSessions in progress (after
// those idle for sessionIdle are dropped) it is refused.
func (u *uploads) open(repo string, now time.Time) (*session, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, s := range u.sessions {
		if s.mu.TryLock() {
			idle := now.Sub(s.touched) > sessionIdle
			s.mu.Unlock()
			if idle {
				delete(u.sessions, id)
				_ = os.Remove(s.file)
			}
		}
	}
	if len(u.sessions) >= maxSessions {
		return nil, apiErr(http.StatusTooManyRequests, "TOOMANYREQUESTS", "%d uploads are in progress: finish or cancel some first", len(u.sessions))
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(raw)
	s := &session{id: id, repo: repo, file: filepath.Join(u.dir, id), sum: sha256.New(), touched: now}
	f, err := os.OpenFile(s.file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("starting an upload: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("starting an upload: %w", err)
	}
	u.sessions[id] = s
	return s, nil
}

// get returns repo's session id.
func (u *uploads) get(repo, id string) (*session, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.sessions[id]
	if s == nil || s.repo != repo {
		return nil, apiErr(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "no upload %s in progress for %s: start it again", truncate(id, 40), repo)
	}
	return s, nil
}

// drop ends session s and removes its file, if it is still there.
func (u *uploads) drop(s *session) {
	u.mu.Lock()
	if u.sessions[s.id] == s {
		delete(u.sessions, s.id)
	}
	u.mu.Unlock()
	_ = os.Remove(s.file)
}

// startUpload answers POST /v2/<repo>/blobs/uploads/: a mount of a blob the
// registry has (all repositories share blobs), a whole blob in one request
// (?digest=), or a new session to PATCH and PUT to.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, repo string) error {
	q := req.URL.Query()
	if m := q.Get("mount"); m != "" {
		if h, err := parseDigest(m); err == nil {
			if _, err := r.blobs.size(h); err == nil {
				blobCreated(w, repo, h)
				return nil
			}
		}
	}
	var want v1.Hash
	if d := q.Get("digest"); d != "" {
		h, err := parseDigest(d)
		if err != nil {
			return err
		}
		want = h
	}
	s, err := r.uploads.open(repo, r.cfg.Now())
	if err != nil {
		return err
	}
	if want.Hex != "" { // monolithic upload
		s.mu.Lock()
		defer s.mu.Unlock()
		return r.finish(w, req, s, want)
	}
	uploadStatus(w, s, http.StatusAccepted)
	return nil
}

// upload serves an upload session: PATCH appends a chunk, PUT appends the
// last one and finishes the blob, GET reports progress, DELETE cancels.
func (r *Registry) upload(w http.ResponseWriter, req *http.Request, p apiPath) error {
	s, err := r.uploads.get(p.repo, p.ref)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		return apiErr(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload %s failed earlier: start it again", s.id)
	}
	s.touched = r.cfg.Now()
	switch req.Method {
	case http.MethodGet:
		uploadStatus(w, s, http.StatusNoContent)
		return nil
	case http.MethodDelete:
		r.uploads.drop(s)
		s.broken = true
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		if cr := req.Header.Get("Content-Range"); cr != "" {
			start, _, ok := parseRange(cr)
			if !ok || start != s.size {
				uploadRange(w, s)
				return apiErr(http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "Content-Range %q does not continue the upload, which has %d bytes", truncate(cr, 40), s.size)
			}
		}
		if err := r.appendBody(s, req.Body); err != nil {
			return err
		}
		uploadStatus(w, s, http.StatusAccepted)
		return nil
	}
	want, err := parseDigest(req.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	return r.finish(w, req, s, want)
}

// finish appends the request's body (if any) to s, checks the digest and
// stages the blob. The session ends whatever the outcome. Call with s.mu held.
func (r *Registry) finish(w http.ResponseWriter, req *http.Request, s *session, want v1.Hash) error {
	defer func() {
		s.broken = true
		r.uploads.drop(s)
	}()
	if err := r.appendBody(s, req.Body); err != nil {
		return err
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s.sum.Sum(nil))}
	if got != want {
		return apiErr(http.StatusBadRequest, "DIGEST_INVALID", "the uploaded %d bytes have digest %s, not %s", s.size, got, want)
	}
	if err := syncFile(s.file); err != nil {
		return fmt.Errorf("storing blob %s: %w", want, err)
	}
	if err := r.blobs.stage(s.file, want); err != nil {
		return fmt.Errorf("storing blob %s: %w", want, err)
	}
	blobCreated(w, s.repo, want)
	return nil
}

// copyBuffer is the size of the buffer an upload is copied with.
const copyBuffer = 1 << 20

// appendBody appends body to the session's file and digest, up to the
// blob size limit. A failure breaks the session: the client starts again.
// Call with s.mu held.
func (r *Registry) appendBody(s *session, body io.Reader) (err error) {
	f, err := os.OpenFile(s.file, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		s.broken = true
		return apiErr(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload %s is gone: start it again", s.id)
	}
	if err != nil {
		return fmt.Errorf("appending to upload: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("appending to upload: %w", cerr)
		}
		if err != nil {
			s.broken = true
			r.uploads.drop(s)
		}
	}()
	left := r.cfg.MaxBlob - s.size
	n, err := io.CopyBuffer(io.MultiWriter(f, s.sum), io.LimitReader(body, left+1), make([]byte, copyBuffer))
	s.size += n
	if n > left {
		return apiErr(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "the blob is larger than the registry's limit of %s", byteSize(r.cfg.MaxBlob))
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return apiErr(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "the request body is too large")
	case err != nil && isWriteError(err):
		return fmt.Errorf("appending to upload: %w", err)
	case err != nil:
		return apiErr(http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "reading the upload: %v", err)
	}
	return nil
}

// isWriteError tells a failed write to the upload's file (the server's
// fault) from a failed read of the request (the client's).
func isWriteError(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe)
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// parseRange reads "start-end" (Content-Range of a chunk).
func parseRange(s string) (start, end int64, ok bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "bytes ")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	return start, end, err1 == nil && err2 == nil && start >= 0 && end >= start
}

func uploadLocation(s *session) string { return "/v2/" + s.repo + "/blobs/uploads/" + s.id }

// uploadRange sets the headers that tell a client how far an upload is.
func uploadRange(w http.ResponseWriter, s *session) {
	end := s.size - 1
	if end < 0 {
		end = 0 // as the distribution registry says of an empty upload
	}
	h := w.Header()
	h.Set("Location", uploadLocation(s))
	h.Set("Range", "0-"+strconv.FormatInt(end, 10))
	h.Set("Docker-Upload-UUID", s.id)
}

func uploadStatus(w http.ResponseWriter, s *session, status int) {
	uploadRange(w, s)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

func blobCreated(w http.ResponseWriter, repo string, h v1.Hash) {
	w.Header().Set("Location", "/v2/"+repo+"/blobs/"+h.String())
	w.Header().Set("Docker-Content-Digest", h.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// byteSize formats n for a message: "10 GiB", "512 KiB", "100 bytes".
func byteSize(n int64) string {
	for _, u := range []struct {
		shift int
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
