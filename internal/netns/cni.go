package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"noops/internal/errkind"
)

// cniVersion is the newest spec version Debian's plugins (1.1.x) speak.
const cniVersion = "1.0.0"

// undoTimeout bounds the clean-up after a failed Setup.
const undoTimeout = 30 * time.Second

// requiredPlugins are the CNI plugins every sandbox network uses.
var requiredPlugins = [...]string{"bridge", "host-local", "loopback"}

const pluginHint = "run `make setup`, or `apt-get install containernetworking-plugins`"

// CheckPlugins reports, as an Unavailable error with a hint, which of the
// bridge, host-local and loopback CNI plugins are not in any of dirs. No
// dirs means the default folders /usr/lib/cni and /opt/cni/bin.
func CheckPlugins(dirs []string) error {
	if len(dirs) == 0 {
		dirs = defaultPluginDirs()
	}
	var missing []string
	for _, p := range requiredPlugins {
		if !pluginIn(p, dirs) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return errkind.WithHint(errkind.Unavailable,
			fmt.Errorf("CNI plugins %s not found in %s", strings.Join(missing, ", "), strings.Join(dirs, ", ")),
			pluginHint)
	}
	return nil
}

// pluginIn reports whether an executable named p is in one of dirs.
func pluginIn(p string, dirs []string) bool {
	for _, d := range dirs {
		fi, err := os.Stat(filepath.Join(d, p))
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return true
		}
	}
	return false
}

// confList is the network configuration list for one bridge and subnet.
// Sandboxes get a route to the subnet only, unless ipMasq is set: then they
// also get a default route through the bridge, and the host masquerades
// what leaves the subnet. Loopback runs after bridge: it brings lo up and
// passes the bridge's result through unchanged.
func confList(bridge string, subnet netip.Prefix, ipamDir string, ipMasq bool) (*libcni.NetworkConfigList, error) {
	conf := map[string]any{
		"cniVersion": cniVersion,
		"name":       "noops-" + bridge,
		"plugins": []any{
			map[string]any{
				"type":             "bridge",
				"bridge":           bridge,
				"isGateway":        true,
				"isDefaultGateway": ipMasq,
				"ipMasq":           ipMasq,
				"hairpinMode":      true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": subnet.String()}}},
					"dataDir": ipamDir,
				},
			},
			map[string]any{"type": "loopback"},
		},
	}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("encoding CNI network configuration: %w", err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("parsing CNI network configuration: %w", err)
	}
	return list, nil
}

// attach runs CNI ADD for id in the namespace at path and reads the address
// and gateway from the result.
func (n *Network) attach(ctx context.Context, id, path string) (Attachment, error) {
	res, err := n.cni.AddNetworkList(ctx, n.list, n.runtimeConf(id, path))
	if err != nil {
		return Attachment{}, classifyCNI(fmt.Errorf("attaching sandbox %s to bridge %s: %w", id, n.bridge, err))
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return Attachment{}, fmt.Errorf("reading CNI result for sandbox %s: %w", id, err)
	}
	for _, ipc := range r.IPs {
		ip, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok || !ip.Unmap().Is4() {
			continue
		}
		ip = ip.Unmap()
		if ipc.Interface != nil && (*ipc.Interface < 0 || *ipc.Interface >= len(r.Interfaces) || r.Interfaces[*ipc.Interface].Sandbox == "") {
			continue // an address on the host side, not the sandbox's
		}
		if !n.subnet.Contains(ip) {
			return Attachment{}, fmt.Errorf("CNI gave sandbox %s address %s outside subnet %s", id, ip, n.subnet)
		}
		gw, ok := netip.AddrFromSlice(ipc.Gateway)
		if !ok {
			return Attachment{}, fmt.Errorf("CNI gave sandbox %s address %s without a gateway", id, ip)
		}
		return Attachment{NetNS: path, IP: ip, Gateway: gw.Unmap()}, nil
	}
	return Attachment{}, fmt.Errorf("CNI gave sandbox %s no IPv4 address on %s", id, ifName)
}

// classifyCNI classifies an error from libcni. A missing plugin or an
// exhausted subnet is Unavailable; anything else is internal. The message,
// from libcni, names the failing plugin and carries its own message.
func classifyCNI(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to find plugin"):
		return errkind.WithHint(errkind.Unavailable, err, pluginHint)
	case strings.Contains(msg, "no IP addresses available"):
		return errkind.WithHint(errkind.Unavailable, err, "use a larger --subnet, or run fewer sandboxes")
	}
	return err
}
