package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"noops/internal/apitype"
	"noops/internal/errkind"
	"noops/internal/source"
	"noops/internal/spec"
)

func newDeploy(e *env) *cobra.Command {
	var app, img, access string
	var port int
	c := &cobra.Command{
		Use:   "deploy [DIR] | --image REF",
		Short: "Build the folder (or take an image from the noops registry), release it and roll it out; prints the URL",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ev apitype.DeployEvent
			var err error
			switch {
			case img != "" && len(args) == 1:
				return usageError{fmt.Errorf("give a folder or --image, not both")}
			case img == "" && port != 0:
				return usageError{fmt.Errorf("--port goes with --image; a folder's port is run.port in noops.yaml")}
			case img == "" && access != "":
				return usageError{fmt.Errorf("--access goes with --image; a folder's access is the access section of noops.yaml")}
			case img != "":
				ev, err = e.deployImage(cmd, img, app, port, access)
			default:
				dir := "."
				if len(args) == 1 {
					dir = args[0]
				}
				ev, err = e.deploy(cmd.Context(), dir, app)
			}
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(ev)
			}
			fmt.Fprintf(e.stdout, "%s v%d is live at %s\n", ev.Release.App, ev.Release.Number, ev.URL)
			return nil
		},
	}
	c.Flags().StringVar(&app, "app", "", "app name (default: name in noops.yaml, else the folder's or the image repository's name)")
	c.Flags().StringVar(&img, "image", "", "deploy this image from the noops registry (REPO:TAG, registry.DOMAIN/REPO:TAG or sha256:…) instead of building")
	c.Flags().IntVar(&port, "port", 0, "with --image: the port the image listens on (default: its one exposed port, else 8080)")
	c.Flags().StringVar(&access, "access", "", "with --image: public or authenticated (default: the app's current access; a new app needs sign-in)")
	addJSON(c, e)
	return c
}

// appName picks the app's name: --app, then the manifest's name, then the
// folder's name made into a valid one.
func appName(dir, flag string) (string, error) {
	if flag != "" {
		return flag, spec.ValidAppName(flag)
	}
	m, err := spec.Load(dir)
	if err != nil {
		return "", err
	}
	if m.Name != "" {
		return m.Name, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", dir, err)
	}
	name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(filepath.Base(abs)), "-"), "-")
	if len(name) > 30 {
		name = strings.Trim(name[:30], "-")
	}
	if err := spec.ValidAppName(name); err != nil {
		return "", errkind.WithHint(errkind.Invalid, fmt.Errorf("cannot make an app name from the folder %q", filepath.Base(abs)), "give one with --app NAME or name: in noops.yaml")
	}
	return name, nil
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

func (e *env) deploy(ctx context.Context, dir, flagApp string) (apitype.DeployEvent, error) {
	var none apitype.DeployEvent
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return none, errkind.Errorf(errkind.Invalid, "%s is not a folder", dir)
	}
	app, err := appName(dir, flagApp)
	if err != nil {
		return none, err
	}
	p := newProgress(e.stderr, e.json)
	p.line(fmt.Sprintf("==> packing %s as %s", dir, app))
	tmp, err := os.CreateTemp("", "noops-deploy-*.tar.gz")
	if err != nil {
		return none, fmt.Errorf("creating a temporary archive: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	st, err := source.Pack(dir, io.MultiWriter(tmp, h))
	if err != nil {
		return none, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return none, fmt.Errorf("sizing archive: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return none, fmt.Errorf("rewinding archive: %w", err)
	}
	p.line(fmt.Sprintf("    %d files, %s (%s compressed), %d ignored", st.Files, human(st.Bytes), human(size), st.Skipped))
	body := p.upload(tmp, size)
	ev, err := e.client().Deploy(ctx, app, body, size, hex.EncodeToString(h.Sum(nil)), p.event)
	p.done()
	return ev, err
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// deployImage deploys an image that is in the noops registry.
func (e *env) deployImage(cmd *cobra.Command, ref, app string, port int, access string) (apitype.DeployEvent, error) {
	if app == "" {
		repo := ref
		if i := strings.LastIndexAny(repo, ":@"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(repo[strings.LastIndex(repo, "/")+1:]), "-"), "-")
		if spec.ValidAppName(name) != nil {
			return apitype.DeployEvent{}, errkind.WithHint(errkind.Invalid, fmt.Errorf("cannot make an app name from the image %q", ref), "give one with --app NAME")
		}
		app = name
	} else if err := spec.ValidAppName(app); err != nil {
		return apitype.DeployEvent{}, err
	}
	p := newProgress(e.stderr, e.json)
	p.line(fmt.Sprintf("==> deploying image %s as %s", ref, app))
	ev, err := e.client().DeployImage(cmd.Context(), app, ref, port, access, p.event)
	p.done()
	return ev, err
}
