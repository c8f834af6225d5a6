package shield

// The CRS regression tests are in go-ftw's format: this file reads them and
// builds each stage's request byte for byte as go-ftw does (the request
// line, the headers sorted by name, the autocompleted Content-Type,
// Content-Length and Connection, the form encoding of data, the CRLF of
// multipart bodies), so a malformed request reaches the gateway exactly as
// the test wrote it.

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"gopkg.in/yaml.v3"
)

// ftwFile is one YAML file of tests, for one rule.
type ftwFile struct {
	Meta   map[string]any `yaml:"meta"`
	RuleID int            `yaml:"rule_id"`
	Tests  []ftwTest      `yaml:"tests"`
}

type ftwTest struct {
	TestID int        `yaml:"test_id"`
	Desc   string     `yaml:"desc"`
	Tags   []string   `yaml:"tags"`
	Stages []ftwStage `yaml:"stages"`

	id   string // "920100-4"
	file string
}

type ftwStage struct {
	Description string    `yaml:"description"`
	Input       ftwInput  `yaml:"input"`
	Output      ftwOutput `yaml:"output"`
}

type ftwInput struct {
	DestAddr            *string           `yaml:"dest_addr"`
	Port                *int              `yaml:"port"`
	Protocol            *string           `yaml:"protocol"`
	Method              *string           `yaml:"method"`
	URI                 *string           `yaml:"uri"`
	Version             *string           `yaml:"version"`
	Headers             map[string]string `yaml:"headers"`
	Data                *string           `yaml:"data"`
	EncodedData         *string           `yaml:"encoded_data"`
	EncodedRequest      string            `yaml:"encoded_request"`
	AutocompleteHeaders *bool             `yaml:"autocomplete_headers"`
	StopMagic           *bool             `yaml:"stop_magic"`
}

type ftwOutput struct {
	Status           int    `yaml:"status"`
	ResponseContains string `yaml:"response_contains"`
	Log              struct {
		ExpectIDs    []int  `yaml:"expect_ids"`
		NoExpectIDs  []int  `yaml:"no_expect_ids"`
		MatchRegex   string `yaml:"match_regex"`
		NoMatchRegex string `yaml:"no_match_regex"`
	} `yaml:"log"`
	ExpectError *bool `yaml:"expect_error"`
	RetryOnce   *bool `yaml:"retry_once"`
	Isolated    bool  `yaml:"isolated"`
}

// loadFTW reads every test of the CRS regression suite the
// coraza-coreruleset module carries (its tests package embeds them, so
// they are the tests of exactly the rules the engine compiles). Unknown
// fields are an error: a change of the format must not pass unnoticed.
func loadFTW() ([]*ftwTest, error) {
	var tests []*ftwTest
	err := fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		b, err := fs.ReadFile(crstests.FS, p)
		if err != nil {
			return err
		}
		var f ftwFile
		if err := yaml.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		if err := knownStageFields(b); err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		if f.RuleID == 0 { // go-ftw falls back on the file name
			f.RuleID, _ = strconv.Atoi(regexp.MustCompile(`\d+`).FindString(path.Base(p)))
		}
		for i := range f.Tests {
			tc := &f.Tests[i]
			if tc.TestID == 0 {
				tc.TestID = i + 1
			}
			tc.id, tc.file = fmt.Sprintf("%d-%d", f.RuleID, tc.TestID), p
			tests = append(tests, tc)
		}
		return nil
	})
	return tests, err
}

// knownStageFields fails on a field of a stage's input or output that
// ftwInput and ftwOutput do not know: go-ftw would act on it and this
// runner would not. (Other unknown fields, as go-ftw's, are ignored.)
func knownStageFields(b []byte) error {
	var f struct {
		Tests []struct {
			Stages []struct {
				Input  map[string]any `yaml:"input"`
				Output map[string]any `yaml:"output"`
			} `yaml:"stages"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return err
	}
	known := func(what string, m map[string]any, v any) error {
		fields := map[string]bool{}
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
			fields[name] = true
		}
		for k := range m {
			if !fields[k] {
				return fmt.Errorf("unknown %s field %q", what, k)
			}
		}
		return nil
	}
	for _, tc := range f.Tests {
		for _, st := range tc.Stages {
			if err := known("input", st.Input, ftwInput{}); err != nil {
				return err
			}
			if err := known("output", st.Output, ftwOutput{}); err != nil {
				return err
			}
			if l, ok := st.Output["log"].(map[string]any); ok {
				if err := known("output.log", l, ftwOutput{}.Log); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (in *ftwInput) method() string  { return ftwDefault(in.Method, "GET") }
func (in *ftwInput) uri() string     { return ftwDefault(in.URI, "/") }
func (in *ftwInput) version() string { return ftwDefault(in.Version, "HTTP/1.1") }

// autocomplete is go-ftw's default: on, unless autocomplete_headers (or
// its inverse, the older stop_magic) says otherwise.
func (in *ftwInput) autocomplete() bool {
	switch {
	case in.AutocompleteHeaders != nil:
		return *in.AutocompleteHeaders
	case in.StopMagic != nil:
		return !*in.StopMagic
	}
	return true
}

func ftwDefault(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

// data is the body: data is a Go template (go-ftw evaluates it with the
// sprig functions; the suite uses repeat), encoded_data base64. go-ftw
// sends no body when the template does not parse or run.
func (in *ftwInput) data() []byte {
	switch {
	case in.Data != nil:
		t, err := template.New("ftw").Funcs(template.FuncMap{"repeat": func(n int, s string) string { return strings.Repeat(s, n) }}).Parse(*in.Data)
		if err != nil {
			return nil
		}
		var b bytes.Buffer
		if err := t.Execute(&b, nil); err != nil {
			return nil
		}
		return b.Bytes()
	case in.EncodedData != nil:
		b, _ := base64.StdEncoding.DecodeString(*in.EncodedData)
		return b
	}
	return nil
}

// ftwBodyMethods is go-ftw's (unanchored in the middle, as there).
var ftwBodyMethods = regexp.MustCompile(`^POST|PUT|PATCH|DELETE$`)

// rawRequest returns the bytes go-ftw would send for the stage, with the
// request target and the Host and Referer headers passed through rename
// (field is ":target", "Host" or "Referer"; an encoded request has only
// its Host lines renamed).
func (in *ftwInput) rawRequest(rename func(field, value string) string) ([]byte, error) {
	if in.EncodedRequest != "" {
		raw, err := base64.StdEncoding.DecodeString(in.EncodedRequest)
		if err != nil {
			return nil, fmt.Errorf("decoding encoded_request: %w", err)
		}
		return rewriteRawHost(raw, func(v string) string { return rename("Host", v) }), nil
	}
	// go-ftw's header type: one value per name, names as written (Add and
	// Get are case-sensitive), written sorted by name.
	h := make(map[string]string, len(in.Headers)+3)
	for k, v := range in.Headers {
		h[k] = v
	}
	for _, k := range []string{"Host", "Referer"} {
		if v, ok := h[k]; ok {
			h[k] = rename(k, v)
		}
	}
	add := func(k, v string) {
		if h[k] == "" {
			h[k] = v
		}
	}
	data := in.data()
	if len(data) > 0 && in.autocomplete() {
		add("Content-Type", "application/x-www-form-urlencoded")
		data = ftwFormEncode(h["Content-Type"], data)
	}
	if strings.HasPrefix(h["Content-Type"], "multipart/form-data;") {
		data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	}
	if in.autocomplete() {
		add("Connection", "close")
		if len(data) > 0 || ftwBodyMethods.MatchString(in.method()) {
			add("Content-Length", strconv.Itoa(len(data)))
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\r\n", in.method(), rename(":target", in.uri()), in.version())
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		b.WriteString(k + ": " + h[k] + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(data)
	return b.Bytes(), nil
}

// ftwFormEncode is go-ftw's encodeDataParameters: a form body that is not
// encoded yet (unescaping changes nothing) has its keys and values
// query-escaped.
func ftwFormEncode(ct string, data []byte) []byte {
	if ct != "application/x-www-form-urlencoded" {
		return data
	}
	if un, err := url.QueryUnescape(string(data)); err != nil || un != string(data) {
		return data
	}
	var out []string
	for _, tok := range strings.Split(string(data), "&") {
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			out = append(out, url.QueryEscape(tok))
			continue
		}
		out = append(out, url.QueryEscape(k)+"="+url.QueryEscape(v))
	}
	return []byte(strings.Join(out, "&"))
}

var rawHostLine = regexp.MustCompile(`(?im)^(Host:[ \t]*)([^\r\n]*?)([ \t]*\r?)$`)

// rewriteRawHost rewrites the Host lines of a raw request's head.
func rewriteRawHost(raw []byte, host func(string) string) []byte {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	head := rawHostLine.ReplaceAllFunc(raw[:end], func(line []byte) []byte {
		m := rawHostLine.FindSubmatch(line)
		return []byte(string(m[1]) + host(string(m[2])) + string(m[3]))
	})
	return append(head, raw[end:]...)
}

// rawHost returns the Host header's value of a raw request ("" if none).
func rawHost(raw []byte) string {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	if m := rawHostLine.FindSubmatch(raw[:end]); m != nil {
		return string(m[2])
	}
	return ""
}

// rawMethod returns the method of a raw request line.
func rawMethod(raw []byte) string {
	m, _, _ := bytes.Cut(raw, []byte(" "))
	return string(m)
}

// crsRoutable splits a Host header into the gateway app label and domain
// that serve it, or says it cannot be an app's host (an IP address, a
// bare name, a name with characters outside a DNS label).
func crsRoutable(host string) (app, domain string, ok bool) {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return "", "", false
	}
	app, domain, ok = strings.Cut(h, ".")
	if !ok || app == "" || domain == "" {
		return "", "", false
	}
	for _, c := range app {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "", "", false
		}
	}
	for _, c := range domain {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return "", "", false
		}
	}
	return app, domain, true
}
