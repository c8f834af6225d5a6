package stack

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"noops/internal/image"
)

// What noops writes into every stack image, in place of what maintainer
// scripts and base-passwd would have made: users and groups, name service
// switch, home and scratch folders. The users match image's base layer.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nonroot:x:65532:\n" +
		"nobody:x:65534:\n"
	nsswitch = "passwd: files\ngroup: files\nshadow: files\n" +
		"hosts: files dns\nnetworks: files\n" +
		"protocols: files\nservices: files\nethers: files\nrpc: files\n"
)

// caBundle is where programs look for the trusted certificates (Go,
// curl, and OpenSSL through caLinks), and caSource where ca-certificates
// ships them one per file.
const (
	caBundle = "etc/ssl/certs/ca-certificates.crt"
	caSource = "usr/share/ca-certificates/mozilla/"
	statusD  = "var/lib/dpkg/status.d"
)

// addSystemFiles adds to t what an image needs beyond its packages' data.
func addSystemFiles(t tree, parts []*unpacked) error {
	t.add(dir("etc", 0o755, 0))
	t.add(regular("etc/passwd", 0o644, []byte(passwd)))
	t.add(regular("etc/group", 0o644, []byte(group)))
	t.add(regular("etc/nsswitch.conf", 0o644, []byte(nsswitch)))
	t.add(dir("tmp", 0o1777, 0))
	t.add(dir("home", 0o755, 0))
	t.add(dir("home/nonroot", 0o700, image.NonRootUID))
	t.add(dir("root", 0o700, 0))
	t.add(dir(strings.TrimPrefix(image.AppDir, "/"), 0o755, 0))
	if err := addCABundle(t); err != nil {
		return err
	}
	for _, u := range parts {
		if strings.HasPrefix(u.pkg.Name, "libssl") {
			// OpenSSL looks in its OPENSSLDIR, /usr/lib/ssl, which
			// the openssl package (left out) would have linked to
			// /etc/ssl; cert.pem makes it load the bundle at once.
			t.add(symlink("usr/lib/ssl/certs", "/etc/ssl/certs"))
			t.add(symlink("usr/lib/ssl/cert.pem", "/"+caBundle))
			break
		}
	}
	t.add(dir(statusD, 0o755, 0))
	for _, u := range parts {
		t.add(regular(path.Join(statusD, u.pkg.Name), 0o644, []byte(statusRecord(u.control))))
	}
	t.finish()
	return nil
}

// addCABundle writes the bundle of the CA certificates in caSource, in
// name order, as update-ca-certificates (which runs from a maintainer
// script) would. No ca-certificates package means no bundle.
func addCABundle(t tree) error {
	var names []string
	for n, f := range t {
		if strings.HasPrefix(n, caSource) && strings.HasSuffix(n, ".crt") && f.hdr.Typeflag == '0' {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, n := range names {
		pem, _, err := t.read(n)
		if err != nil {
			return fmt.Errorf("making the CA bundle: %w", err)
		}
		b.Write(pem)
		if len(pem) > 0 && pem[len(pem)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	t.add(dir("etc/ssl", 0o755, 0))
	t.add(dir("etc/ssl/certs", 0o755, 0))
	t.add(regular(caBundle, 0o644, b.Bytes()))
	return nil
}

// statusRecord is a package's record in status.d, the layout distroless
// images use and scanners (Trivy, Syft, Grype) read: its control file
// with dpkg's Status field.
func statusRecord(control Paragraph) string {
	out := make(Paragraph, 0, len(control)+1)
	for _, f := range control {
		if strings.EqualFold(f.Name, "Status") {
			continue
		}
		out = append(out, f)
		if strings.EqualFold(f.Name, "Package") {
			out = append(out, Field{Name: "Status", Value: "install ok installed"})
		}
	}
	return out.String()
}

// distro is "ID-VERSION_ID" of the os-release file in t, e.g. "debian-12".
func distro(t tree) (string, error) {
	b, ok, err := t.read("usr/lib/os-release")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("the image has no /usr/lib/os-release (base-files is missing)")
	}
	vars := parseOSRelease(string(b))
	if vars["ID"] == "" {
		return "", fmt.Errorf("/usr/lib/os-release names no ID")
	}
	if vars["VERSION_ID"] == "" {
		return vars["ID"], nil // testing and unstable have no version
	}
	return vars["ID"] + "-" + vars["VERSION_ID"], nil
}

// parseOSRelease reads the KEY=value lines of an os-release file.
func parseOSRelease(s string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		} else {
			v = strings.Trim(v, `"'`)
		}
		vars[k] = v
	}
	return vars
}
