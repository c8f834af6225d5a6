package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// refAnnotation names a manifest in the layout's index.json (what
// image.RefAnnotation is).
const refAnnotation = "org.opencontainers.image.ref.name"

// getManifest answers GET and HEAD of /v2/<repo>/manifests/<tag|digest>.
// A tag is looked up among the names the registry gave in the image store;
// a digest is any manifest the store holds.
func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request, repo, ref string) error {
	var d v1.Hash
	var mt types.MediaType
	if strings.Contains(ref, ":") {
		h, err := parseDigest(ref)
		if err != nil {
			return err
		}
		d = h
	} else {
		if !ValidTag(ref) {
			return apiErr(http.StatusBadRequest, "TAG_INVALID", "tag %q is not valid", truncate(ref, 140))
		}
		desc, ok, err := r.lookup(Ref(repo, ref))
		if err != nil {
			return err
		}
		if !ok {
			return apiErr(http.StatusNotFound, "MANIFEST_UNKNOWN", "%s:%s is not in the registry", repo, ref)
		}
		d, mt = desc.Digest, desc.MediaType
	}
	raw, err := r.blobs.readLayout(d, maxManifest)
	if errors.Is(err, fs.ErrNotExist) {
		return apiErr(http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest %s is not in the registry", d)
	}
	if err != nil {
		return fmt.Errorf("reading manifest %s: %w", d, err)
	}
	if !mt.IsImage() && !mt.IsIndex() {
		if mt = detectType(raw); mt == "" {
			return apiErr(http.StatusNotFound, "MANIFEST_UNKNOWN", "%s is not a manifest", d)
		}
	}
	h := w.Header()
	h.Set("Content-Type", string(mt))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = w.Write(raw)
	}
	return nil
}

// putManifest answers PUT /v2/<repo>/manifests/<tag|digest>: the manifest
// is checked against the blobs (or, for an index, the manifests) it names,
// then written into the image store and named there.
func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, repo, ref string) error {
	raw, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
	if err != nil {
		return apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "reading the manifest: %v", err)
	}
	if len(raw) > maxManifest {
		return apiErr(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "a manifest may be at most %s", byteSize(maxManifest))
	}
	d, _, _ := v1.SHA256(bytes.NewReader(raw))
	name := ""
	if strings.Contains(ref, ":") {
		want, err := parseDigest(ref)
		if err != nil {
			return err
		}
		if want != d {
			return apiErr(http.StatusBadRequest, "DIGEST_INVALID", "the manifest has digest %s, not %s", d, want)
		}
		name = DigestRef(repo, d)
	} else {
		if !ValidTag(ref) {
			return apiErr(http.StatusBadRequest, "TAG_INVALID", "tag %q is not valid: use up to 128 letters, digits, '.', '_' and '-', not starting with '.' or '-'", truncate(ref, 140))
		}
		name = Ref(repo, ref)
	}
	mt, err := manifestType(raw, req.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	var img v1.Image
	var staged []v1.Hash
	if mt.IsIndex() {
		img, err = r.checkIndex(raw, mt, d)
	} else {
		img, staged, err = r.checkImage(raw, mt)
	}
	if err != nil {
		return err
	}
	if _, err := r.cfg.Images.Put(img, name); err != nil {
		if errors.Is(err, fs.ErrNotExist) { // the store's garbage collection took a blob a HEAD saw
			return apiErr(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "a blob the manifest names was removed meanwhile: push again")
		}
		return fmt.Errorf("storing manifest %s as %s: %w", d, name, err)
	}
	r.blobs.unstage(staged)
	r.log.Info("registry: stored a pushed manifest", "name", name, "digest", d.String(), "media_type", string(mt))
	h := w.Header()
	h.Set("Location", "/v2/"+repo+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// manifestProbe is what manifestType reads of a manifest.
type manifestProbe struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	Config        json.RawMessage `json:"config"`
	Manifests     json.RawMessage `json:"manifests"`
}

// supported are the manifest media types the registry stores.
var supported = []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2, types.OCIImageIndex, types.DockerManifestList}

// manifestType is the media type of a pushed manifest: its mediaType
// field, which the Content-Type must not contradict, else the Content-Type,
// else what its fields make it (an OCI manifest may leave mediaType out).
func manifestType(raw []byte, contentType string) (types.MediaType, error) {
	var p manifestProbe
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "the manifest is not JSON: %v", err)
	}
	if p.SchemaVersion != 2 {
		return "", apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "schemaVersion %d is not supported: push an OCI or Docker v2 (schemaVersion 2) manifest", p.SchemaVersion)
	}
	ct, _, _ := mime.ParseMediaType(contentType)
	ctType := types.MediaType(ct)
	if !slices.Contains(supported, ctType) {
		ctType = "" // application/json, octet-stream or none: the body decides
	}
	mt := p.MediaType
	switch {
	case mt != "" && ctType != "" && mt != ctType:
		return "", apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "the request's Content-Type is %s but the manifest says %s", ctType, mt)
	case mt == "" && ctType != "":
		mt = ctType
	case mt == "":
		mt = detectType(raw)
	}
	if !slices.Contains(supported, mt) {
		return "", apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "manifest media type %q is not supported: push an OCI or Docker v2 image manifest or index", mt)
	}
	return mt, nil
}

// detectType names the type of a stored manifest: its mediaType field, or
// for an OCI manifest without one, what its fields make it; "" for
// something that is not a manifest.
func detectType(raw []byte) types.MediaType {
	var p manifestProbe
	if json.Unmarshal(raw, &p) != nil || p.SchemaVersion != 2 {
		return ""
	}
	switch {
	case p.MediaType != "":
		return p.MediaType
	case len(p.Manifests) > 0:
		return types.OCIImageIndex
	case len(p.Config) > 0:
		return types.OCIManifestSchema1
	}
	return ""
}

// checkImage checks that the blobs an image manifest names were pushed,
// with the sizes it gives, and returns the image to store and the staged
// blobs storing it copies.
func (r *Registry) checkImage(raw []byte, mt types.MediaType) (v1.Image, []v1.Hash, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "reading the manifest: %v", err)
	}
	descs := append([]v1.Descriptor{m.Config}, m.Layers...)
	hs := make([]v1.Hash, 0, len(descs))
	for i, desc := range descs {
		what := "config"
		if i > 0 {
			what = fmt.Sprintf("layer %d", i)
		}
		if desc.Digest.Algorithm != "sha256" {
			return nil, nil, apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "the %s has digest %s: only sha256 is supported", what, desc.Digest)
		}
		n, err := r.blobs.size(desc.Digest)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, apiErr(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "the manifest's %s %s is not in the registry: push the blob first", what, desc.Digest)
		}
		if err != nil {
			return nil, nil, err
		}
		if n != desc.Size {
			return nil, nil, apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "the manifest's %s %s has %d bytes, not the %d it says", what, desc.Digest, n, desc.Size)
		}
		hs = append(hs, desc.Digest)
	}
	// Only container images: the image store's garbage collection and
	// deploys read every stored config as one.
	if ct := m.Config.MediaType; ct != types.DockerConfigJSON && ct != types.OCIConfigJSON {
		return nil, nil, apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "the config has media type %q: the registry stores container images (%s or %s configs)", ct, types.OCIConfigJSON, types.DockerConfigJSON)
	}
	if m.Config.Size > maxConfig {
		return nil, nil, apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "the config blob has %d bytes; at most %s are supported", m.Config.Size, byteSize(maxConfig))
	}
	config, err := r.readBlob(m.Config.Digest, maxConfig)
	if err != nil {
		return nil, nil, err
	}
	if _, err := v1.ParseConfigFile(bytes.NewReader(config)); err != nil {
		return nil, nil, apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "the config %s is not an image config: %v", m.Config.Digest, err)
	}
	img, err := partial.CompressedToImage(&pushedImage{blobs: r.blobs, raw: raw, mt: mt, m: m, config: config})
	if err != nil {
		return nil, nil, err
	}
	return img, hs, nil
}

// checkIndex checks that the manifests an index lists are in the store
// (clients push them, by digest, first) and returns the index to store.
func (r *Registry) checkIndex(raw []byte, mt types.MediaType, d v1.Hash) (v1.Image, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "reading the index: %v", err)
	}
	for _, desc := range im.Manifests {
		if !desc.MediaType.IsImage() && !desc.MediaType.IsIndex() {
			return nil, apiErr(http.StatusBadRequest, "MANIFEST_INVALID", "the index lists %s of type %q: only image manifests and indexes are supported", desc.Digest, desc.MediaType)
		}
		if !r.blobs.inLayout(desc.Digest) {
			return nil, apiErr(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "the index lists manifest %s, which is not in the registry: push it first", desc.Digest)
		}
	}
	return &indexImage{raw: raw, mt: mt, digest: d}, nil
}

// readBlob reads blob h, at most limit bytes of it.
func (r *Registry) readBlob(h v1.Hash, limit int64) ([]byte, error) {
	f, err := r.blobs.open(h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, apiErr(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "blob %s is not in the registry: push it first", h)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", h, err)
	}
	return b, nil
}

// pushedImage is an image made of a pushed manifest and the blobs it
// names, as partial.CompressedToImage wants it.
type pushedImage struct {
	blobs  *blobStore
	raw    []byte
	mt     types.MediaType
	m      *v1.Manifest
	config []byte
}

func (i *pushedImage) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *pushedImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *pushedImage) RawConfigFile() ([]byte, error)      { return i.config, nil }

func (i *pushedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.m.Config.Digest {
		return &pushedBlob{blobs: i.blobs, desc: i.m.Config}, nil
	}
	for _, desc := range i.m.Layers {
		if desc.Digest == h {
			return &pushedBlob{blobs: i.blobs, desc: desc}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not in the manifest", h)
}

type pushedBlob struct {
	blobs *blobStore
	desc  v1.Descriptor
}

func (b *pushedBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *pushedBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *pushedBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }

func (b *pushedBlob) Compressed() (io.ReadCloser, error) {
	f, err := b.blobs.open(b.desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", b.desc.Digest, err)
	}
	return f, nil
}

// indexImage lets Images.Put store an index: an "image" without layers
// whose config blob and manifest are both the index itself, so Put writes
// the index's one blob and names it with the index's media type. (The
// image store has no Put for indexes; with one this goes.)
type indexImage struct {
	raw    []byte
	mt     types.MediaType
	digest v1.Hash
}

var _ v1.Image = (*indexImage)(nil)

func (i *indexImage) Layers() ([]v1.Layer, error)             { return nil, nil }
func (i *indexImage) MediaType() (types.MediaType, error)     { return i.mt, nil }
func (i *indexImage) Size() (int64, error)                    { return int64(len(i.raw)), nil }
func (i *indexImage) ConfigName() (v1.Hash, error)            { return i.digest, nil }
func (i *indexImage) RawConfigFile() ([]byte, error)          { return i.raw, nil }
func (i *indexImage) Digest() (v1.Hash, error)                { return i.digest, nil }
func (i *indexImage) RawManifest() ([]byte, error)            { return i.raw, nil }
func (i *indexImage) ConfigFile() (*v1.ConfigFile, error)     { return nil, errNotImage }
func (i *indexImage) Manifest() (*v1.Manifest, error)         { return nil, errNotImage }
func (i *indexImage) LayerByDigest(v1.Hash) (v1.Layer, error) { return nil, errNotImage }
func (i *indexImage) LayerByDiffID(v1.Hash) (v1.Layer, error) { return nil, errNotImage }

var errNotImage = errors.New("an image index is not an image")

// lookup finds the manifest the image store names name.
func (r *Registry) lookup(name string) (v1.Descriptor, bool, error) {
	idx, err := r.names()
	if err != nil {
		return v1.Descriptor{}, false, err
	}
	for _, m := range idx.Manifests {
		if m.Annotations[refAnnotation] == name {
			return m, true, nil
		}
	}
	return v1.Descriptor{}, false, nil
}

// names reads the image store's index.json (replaced atomically by the
// store, so always whole).
func (r *Registry) names() (*v1.IndexManifest, error) {
	ii, err := layout.Path(r.cfg.Layout).ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading the image store's names: %w", err)
	}
	m, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the image store's names: %w", err)
	}
	return m, nil
}

// tags answers GET /v2/<repo>/tags/list, with the spec's n and last.
func (r *Registry) tags(w http.ResponseWriter, req *http.Request, repo string) error {
	idx, err := r.names()
	if err != nil {
		return err
	}
	known := false
	tags := []string{}
	for _, m := range idx.Manifests {
		rest, ok := strings.CutPrefix(m.Annotations[refAnnotation], refPrefix+repo)
		switch {
		case !ok:
		case strings.HasPrefix(rest, ":") && ValidTag(rest[1:]):
			tags, known = append(tags, rest[1:]), true
		case strings.HasPrefix(rest, "@"):
			known = true
		}
	}
	if !known {
		return apiErr(http.StatusNotFound, "NAME_UNKNOWN", "repository %s is not in the registry", repo)
	}
	page, next, err := paginate(tags, req.URL.Query())
	if err != nil {
		return err
	}
	if next != "" {
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?n=%d&last=%s>; rel="next"`, repo, len(page), url.QueryEscape(next)))
	}
	return writeJSON(w, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{repo, page})
}

// catalog answers GET /v2/_catalog: the repositories pushed to.
func (r *Registry) catalog(w http.ResponseWriter, req *http.Request) error {
	idx, err := r.names()
	if err != nil {
		return err
	}
	repos := []string{}
	for _, m := range idx.Manifests {
		rest, ok := strings.CutPrefix(m.Annotations[refAnnotation], refPrefix)
		if !ok {
			continue
		}
		if i := strings.IndexAny(rest, ":@"); i > 0 && ValidRepo(rest[:i]) {
			repos = append(repos, rest[:i])
		}
	}
	page, next, err := paginate(repos, req.URL.Query())
	if err != nil {
		return err
	}
	if next != "" {
		w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?n=%d&last=%s>; rel="next"`, len(page), url.QueryEscape(next)))
	}
	return writeJSON(w, struct {
		Repositories []string `json:"repositories"`
	}{page})
}

// paginate sorts and deduplicates names and returns those after q's
// "last", at most q's "n" of them, and the last one returned when more
// follow.
func paginate(names []string, q url.Values) ([]string, string, error) {
	slices.Sort(names)
	names = slices.Compact(names)
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(names, last)
		for i < len(names) && names[i] <= last {
			i++
		}
		names = names[i:]
	}
	if s := q.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, "", apiErr(http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n=%q is not a count", truncate(s, 20))
		}
		if n < len(names) {
			names = names[:n]
			if n > 0 {
				return names, names[n-1], nil
			}
		}
	}
	return names, "", nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
