package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

func TestOpenCreatesCA(t *testing.T) {
	t.Parallel()
	c, _, dir := newCA(t)

	modes := map[string]os.FileMode{
		"":                   0o700 | os.ModeDir,
		rootCertFile:         0o644,
		rootKeyFile:          0o600,
		intermediateCertFile: 0o644,
		intermediateKeyFile:  0o600,
	}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != want {
			t.Errorf("mode of %q = %v, want %v", name, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("CA folder holds %d entries, want the 4 files", len(entries))
	}

	root := c.root
	if !root.IsCA || root.MaxPathLen != 1 || !strings.HasPrefix(root.Subject.CommonName, "noops root CA ") {
		t.Errorf("root IsCA=%v MaxPathLen=%d CN=%q, want a CA with MaxPathLen 1 named noops root CA", root.IsCA, root.MaxPathLen, root.Subject.CommonName)
	}
	if got, want := root.NotAfter, t0.AddDate(10, 0, 0); !got.Equal(want) {
		t.Errorf("root NotAfter = %v, want %v", got, want)
	}
	inter := c.Intermediate()
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
		t.Errorf("intermediate IsCA=%v MaxPathLen=%d MaxPathLenZero=%v, want a CA with path length 0", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
	}
	if got, want := inter.NotAfter, t0.Add(intermediateLifetime); !got.Equal(want) {
		t.Errorf("intermediate NotAfter = %v, want %v", got, want)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		t.Errorf("intermediate not signed by root: %v", err)
	}
	for _, cert := range []*ecdsa.PublicKey{root.PublicKey.(*ecdsa.PublicKey), inter.PublicKey.(*ecdsa.PublicKey)} {
		if cert.Curve != elliptic.P256() {
			t.Errorf("key curve = %s, want P-256", cert.Curve.Params().Name)
		}
	}
	if !bytes.Contains(c.RootPEM(), []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("RootPEM() = %q, want a PEM certificate", c.RootPEM())
	}
}

func TestOpenReopensSameCA(t *testing.T) {
	t.Parallel()
	c, clk, dir := newCA(t)
	clk.Advance(100 * day)
	again := openCA(t, dir, clk.Now)
	if !bytes.Equal(again.RootPEM(), c.RootPEM()) {
		t.Errorf("reopened root differs from the first one")
	}
	if got, want := again.Intermediate().SerialNumber, c.Intermediate().SerialNumber; got.Cmp(want) != 0 {
		t.Errorf("reopened intermediate serial = %v, want %v", got, want)
	}
}

func TestOpenRotatesIntermediate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		advance time.Duration
		remove  string
		wantNew bool
	}{
		{name: "valid intermediate is kept", advance: 300 * day},
		{name: "expiring within 30 days is replaced", advance: 340 * day, wantNew: true},
		{name: "missing certificate is replaced", remove: intermediateCertFile, wantNew: true},
		{name: "missing key is replaced", remove: intermediateKeyFile, wantNew: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, clk, dir := newCA(t)
			old := c.Intermediate()
			if tc.remove != "" {
				os.Remove(filepath.Join(dir, tc.remove))
			}
			clk.Advance(tc.advance)
			again := openCA(t, dir, clk.Now)
			inter := again.Intermediate()
			if got := inter.SerialNumber.Cmp(old.SerialNumber) != 0; got != tc.wantNew {
				t.Fatalf("new intermediate = %v, want %v", got, tc.wantNew)
			}
			if err := inter.CheckSignatureFrom(c.root); err != nil {
				t.Errorf("intermediate not signed by the root: %v", err)
			}
			if !bytes.Equal(again.RootPEM(), c.RootPEM()) {
				t.Errorf("root changed while rotating the intermediate")
			}
			if tc.wantNew {
				if got, want := inter.NotAfter, clk.Now().Add(intermediateLifetime); !got.Equal(want) {
					t.Errorf("new intermediate NotAfter = %v, want %v", got, want)
				}
			}
			third := openCA(t, dir, clk.Now)
			if third.Intermediate().SerialNumber.Cmp(inter.SerialNumber) != 0 {
				t.Errorf("the rotated intermediate was not saved")
			}
		})
	}
}

func TestOpenRefusesDamagedFolder(t *testing.T) {
	t.Parallel()
	_, _, otherDir := newCA(t)
	cases := []struct {
		name     string
		damage   func(t *testing.T, dir string)
		advance  time.Duration
		wantFile string
	}{
		{
			name: "garbage root key",
			damage: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, rootKeyFile), []byte("not a key"), 0o600)
			},
			wantFile: rootKeyFile,
		},
		{
			name: "truncated root certificate",
			damage: func(t *testing.T, dir string) {
				p := filepath.Join(dir, rootCertFile)
				b, _ := os.ReadFile(p)
				os.WriteFile(p, b[:len(b)/2], 0o644)
			},
			wantFile: rootCertFile,
		},
		{
			name: "key where the root certificate belongs",
			damage: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, rootKeyFile), filepath.Join(dir, rootCertFile))
			},
			wantFile: rootCertFile,
		},
		{
			name: "root key of another CA",
			damage: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(otherDir, rootKeyFile), filepath.Join(dir, rootKeyFile))
			},
			wantFile: rootKeyFile,
		},
		{
			name: "intermediate key of another CA",
			damage: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(otherDir, intermediateKeyFile), filepath.Join(dir, intermediateKeyFile))
			},
			wantFile: intermediateKeyFile,
		},
		{
			name: "intermediate of another root",
			damage: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(otherDir, intermediateKeyFile), filepath.Join(dir, intermediateKeyFile))
				copyFile(t, filepath.Join(otherDir, intermediateCertFile), filepath.Join(dir, intermediateCertFile))
			},
			wantFile: intermediateCertFile,
		},
		{
			name:     "root key missing",
			damage:   func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, rootKeyFile)) },
			wantFile: rootKeyFile,
		},
		{
			name:     "root certificate missing",
			damage:   func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, rootCertFile)) },
			wantFile: rootCertFile,
		},
		{
			name:     "root expired",
			damage:   func(t *testing.T, dir string) {},
			advance:  11 * 365 * day,
			wantFile: rootCertFile,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, clk, dir := newCA(t)
			tc.damage(t, dir)
			clk.Advance(tc.advance)
			before := snapshot(t, dir)

			_, err := Open(dir, clk.Now)
			if err == nil {
				t.Fatalf("Open of a damaged folder succeeded")
			}
			if want := filepath.Join(dir, tc.wantFile); !strings.Contains(err.Error(), want) {
				t.Errorf("Open error = %q, want it to name %s", err, want)
			}
			if !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Open error kind = %v, want invalid", errkind.Of(err))
			}
			if h := errkind.HintOf(err); !strings.Contains(h, "move it away") {
				t.Errorf("Open error hint = %q, want advice to move the folder away", h)
			}
			after := snapshot(t, dir)
			if len(after) != len(before) {
				t.Errorf("Open changed the damaged folder: %d files, had %d", len(after), len(before))
			}
			for p, b := range before {
				if after[p] != b {
					t.Errorf("Open changed %s in the damaged folder", p)
				}
			}
		})
	}
}

func TestOpenRecoversInterruptedCommit(t *testing.T) {
	t.Parallel()
	t.Run("staging left behind is discarded", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "ca")
		stage := filepath.Join(dir, stagePrefix+"123")
		os.MkdirAll(stage, 0o700)
		os.WriteFile(filepath.Join(stage, rootKeyFile), []byte("half"), 0o600)

		c := openCA(t, dir, newClock().Now)
		if _, err := os.Stat(stage); err == nil {
			t.Errorf("staging folder %s is still there", stage)
		}
		if c.root == nil {
			t.Fatal("no root after Open")
		}
	})
	t.Run("complete commit is installed", func(t *testing.T) {
		t.Parallel()
		src, _, srcDir := newCA(t)
		dir := filepath.Join(t.TempDir(), "ca")
		pending := filepath.Join(dir, commitDir)
		os.MkdirAll(pending, 0o700)
		for _, f := range []string{rootCertFile, rootKeyFile, intermediateCertFile, intermediateKeyFile} {
			copyFile(t, filepath.Join(srcDir, f), filepath.Join(pending, f))
		}

		c := openCA(t, dir, newClock().Now)
		if !bytes.Equal(c.RootPEM(), src.RootPEM()) {
			t.Errorf("Open created a new root instead of installing the committed one")
		}
		if _, err := os.Stat(pending); err == nil {
			t.Errorf("commit folder %s is still there", pending)
		}
	})
	t.Run("commit interrupted halfway through the move is finished", func(t *testing.T) {
		t.Parallel()
		_, clk, dir := newCA(t)
		// A copy of the folder rotates its intermediate; then the rotation is
		// replayed into dir as if it crashed after moving the certificate.
		rotated := filepath.Join(t.TempDir(), "ca")
		os.MkdirAll(rotated, 0o700)
		for _, f := range []string{rootCertFile, rootKeyFile} {
			copyFile(t, filepath.Join(dir, f), filepath.Join(rotated, f))
		}
		want := openCA(t, rotated, clk.Now).Intermediate()
		os.MkdirAll(filepath.Join(dir, commitDir), 0o700)
		copyFile(t, filepath.Join(rotated, intermediateKeyFile), filepath.Join(dir, commitDir, intermediateKeyFile))
		copyFile(t, filepath.Join(rotated, intermediateCertFile), filepath.Join(dir, intermediateCertFile))

		c := openCA(t, dir, clk.Now)
		if got := c.Intermediate().SerialNumber; got.Cmp(want.SerialNumber) != 0 {
			t.Errorf("intermediate serial = %v, want the committed %v", got, want.SerialNumber)
		}
	})
}
