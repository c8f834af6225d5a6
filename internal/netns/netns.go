// Package netns gives every sandbox its own network namespace, attached to a
// host bridge through the standard CNI plugins (bridge, host-local, loopback)
// driven by libcni.
//
// Each sandbox id gets a namespace bound onto StateDir/ns/<id>, which is the
// path runc joins. The bridge plugin creates the bridge (default "noops0"),
// gives it the subnet's first address as the sandboxes' gateway, and a veth
// pair moves eth0 into the namespace; host-local hands out addresses from the
// subnet and keeps its leases in StateDir/ipam, so two data folders never
// share leases. The loopback plugin brings lo up inside the namespace.
// libcni's result cache lives in StateDir/cache rather than /var/lib/cni.
//
// What this changes on the host: the bridge and veth interfaces, and — done
// by the bridge plugin because the bridge is the sandboxes' gateway — the
// global net.ipv4.ip_forward sysctl. Nothing else by default: a sandbox
// has a route to its subnet only, so it reaches the host (at the gateway
// address) and the other sandboxes over the bridge, and nothing beyond. A
// network made with Config.IPMasq (the build network, whose steps fetch
// packages) gives its sandboxes a default route through the bridge, and the
// bridge plugin masquerades what they send beyond the subnet as the host's:
// per attached sandbox, a CNI-… chain in iptables' nat table and a
// POSTROUTING rule jumping to it, both removed by Teardown. Firewalling is
// a separate layer added with nftables: the build firewall (firewall.go)
// and the app firewall's microsegmentation and egress allow-lists
// (appfirewall.go).
package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"

	"noops/internal/errkind"
)

// Defaults for a zero Config.
const (
	DefaultBridge = "noops0"
	DefaultSubnet = "10.88.0.0/16"
)

// ifName is the sandbox's interface inside its namespace.
const ifName = "eth0"

// defaultPluginDirs are searched when a Config names no plugin folder.
func defaultPluginDirs() []string { return []string{"/usr/lib/cni", "/opt/cni/bin"} }

// Config says where sandboxes are attached and where state is kept.
type Config struct {
	Bridge     string   // host bridge interface ("" → DefaultBridge)
	Subnet     string   // IPv4 prefix of the sandbox network, /8 to /28 ("" → DefaultSubnet)
	PluginDirs []string // folders searched for CNI plugins (none → /usr/lib/cni, /opt/cni/bin)
	StateDir   string   // namespace files, IPAM leases and the CNI cache live here
	IPMasq     bool     // a default route through the bridge, and masquerading beyond the subnet (egress through the host); off by default
}

// Attachment is a sandbox's place on the network.
type Attachment struct {
	NetNS   string     // path of the namespace file runc joins
	IP      netip.Addr // the sandbox's address on eth0
	Gateway netip.Addr // the bridge's address: the host as the sandbox sees it (and its default gateway with IPMasq)
}

// Network creates and removes sandbox namespaces on one bridge. Its methods
// are safe for concurrent use; calls for different ids run in parallel.
type Network struct {
	bridge string
	subnet netip.Prefix
	dirs   []string
	nsDir  string
	cni    *libcni.CNIConfig
	list   *libcni.NetworkConfigList

	mu    sync.Mutex
	locks map[string]*idLock // per-id serialisation of Setup and Teardown
}

type idLock struct {
	mu   sync.Mutex
	refs int
}

var (
	bridgeRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	idRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// maxID is the longest sandbox id accepted.
const maxID = 64

// New validates cfg, creates the state folders and prepares the folder of
// namespace files as a mount point. It changes nothing on the network: the
// bridge appears with the first Setup.
func New(cfg Config) (*Network, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.Subnet == "" {
		cfg.Subnet = DefaultSubnet
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = defaultPluginDirs()
	}
	if err := validBridge(cfg.Bridge); err != nil {
		return nil, err
	}
	subnet, err := parseSubnet(cfg.Subnet)
	if err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		return nil, errkind.Errorf(errkind.Invalid, "network state folder is not set")
	}
	state, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, errkind.Errorf(errkind.Invalid, "resolving network state folder %q: %w", cfg.StateDir, err)
	}
	n := &Network{
		bridge: cfg.Bridge,
		subnet: subnet,
		dirs:   append([]string(nil), cfg.PluginDirs...),
		nsDir:  filepath.Join(state, "ns"),
		locks:  map[string]*idLock{},
	}
	for _, d := range []string{state, n.nsDir, filepath.Join(state, "ipam"), filepath.Join(state, "cache")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, classifyFS(fmt.Errorf("creating network state folder %s: %w", d, err))
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, classifyFS(fmt.Errorf("restricting network state folder %s: %w", d, err))
		}
	}
	if err := makeMountPoint(n.nsDir); err != nil {
		return nil, err
	}
	n.list, err = confList(n.bridge, n.subnet, filepath.Join(state, "ipam"), cfg.IPMasq)
	if err != nil {
		return nil, err
	}
	// An explicit exec: libcni would otherwise set one lazily, racing when
	// Setups run in parallel. Plugins report failures on stdout; whatever
	// they print to stderr on success is dropped.
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{}, PluginDecoder: version.PluginDecoder{}}
	n.cni = libcni.NewCNIConfigWithCacheDir(n.dirs, filepath.Join(state, "cache"), exec)
	return n, nil
}

// Bridge is the name of the host bridge.
func (n *Network) Bridge() string { return n.bridge }

// Subnet is the sandbox network.
func (n *Network) Subnet() netip.Prefix { return n.subnet }

// Setup creates a network namespace for sandbox id and attaches it to the
// bridge: Create then Attach. On failure it undoes what it did. An id that
// already has a namespace is a conflict.
func (n *Network) Setup(ctx context.Context, id string) (Attachment, error) {
	if _, err := n.Create(id); err != nil {
		return Attachment{}, err
	}
	return n.Attach(ctx, id)
}

// Create makes the empty network namespace of sandbox id (only lo, down)
// and returns its path. It is quick; Attach, the slow part, can then run
// while the sandbox is being started in the namespace. An id that already
// has a namespace is a conflict.
func (n *Network) Create(id string) (string, error) {
	if err := validID(id); err != nil {
		return "", err
	}
	defer n.lock(id)()
	path := n.nsPath(id)
	if err := createNS(path); err != nil {
		return "", fmt.Errorf("creating network namespace of sandbox %s: %w", id, err)
	}
	return path, nil
}

// Attach connects the namespace that Create made to the bridge and gives it
// an address. On failure it removes the namespace too: the caller only sees
// an error and need not tear down.
func (n *Network) Attach(ctx context.Context, id string) (Attachment, error) {
	if err := validID(id); err != nil {
		return Attachment{}, err
	}
	defer n.lock(id)()
	path := n.nsPath(id)
	if !isNS(path) {
		return Attachment{}, errkind.Errorf(errkind.NotFound, "attaching sandbox %s: it has no network namespace (Create first)", id)
	}
	att, err := n.attach(ctx, id, path)
	if err != nil {
		// Undo on a context of our own: a cancelled ctx must not strand a lease.
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		// The caller only sees an error and will not tear down, so the
		// namespace goes even if DEL fails (the error then says so).
		if derr := n.cni.DelNetworkList(undo, n.list, n.runtimeConf(id, path)); derr != nil {
			err = errors.Join(err, fmt.Errorf("undoing network of sandbox %s: %w", id, derr))
		}
		if rerr := removeNS(path); rerr != nil {
			err = errors.Join(err, fmt.Errorf("undoing network namespace of sandbox %s: %w", id, rerr))
		}
		return Attachment{}, err
	}
	return att, nil
}

// Teardown detaches sandbox id from the bridge, releases its address and
// removes its namespace. An unknown id, or one already torn down, is not an
// error. When the namespace is already gone the address is still released.
// If the CNI plugins fail, the namespace file stays so that a later Teardown
// (and List) can find it again.
func (n *Network) Teardown(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return err
	}
	defer n.lock(id)()
	path := n.nsPath(id)
	nsArg := path
	if !isNS(path) {
		nsArg = "" // gone, or a leftover file after a reboot: release the lease only
	}
	if err := n.cni.DelNetworkList(ctx, n.list, n.runtimeConf(id, nsArg)); err != nil {
		return classifyCNI(fmt.Errorf("detaching sandbox %s from bridge %s: %w", id, n.bridge, err))
	}
	if err := removeNS(path); err != nil {
		return fmt.Errorf("removing network namespace of sandbox %s: %w", id, err)
	}
	return nil
}

// List returns the ids that have a namespace file, sorted, whether or not
// their namespace is still alive (after a reboot only the file remains).
func (n *Network) List() ([]string, error) {
	ents, err := os.ReadDir(n.nsDir)
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces in %s: %w", n.nsDir, err)
	}
	var ids []string
	for _, e := range ents {
		if validID(e.Name()) == nil && e.Type().IsRegular() {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

func (n *Network) nsPath(id string) string { return filepath.Join(n.nsDir, id) }

func (n *Network) runtimeConf(id, nsPath string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: nsPath, IfName: ifName}
}

// lock serialises work on one id and returns the unlock function.
func (n *Network) lock(id string) func() {
	n.mu.Lock()
	l := n.locks[id]
	if l == nil {
		l = &idLock{}
		n.locks[id] = l
	}
	l.refs++
	n.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		n.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(n.locks, id)
		}
		n.mu.Unlock()
	}
}

func validBridge(name string) error {
	if len(name) > 15 || !bridgeRE.MatchString(name) {
		return errkind.Errorf(errkind.Invalid, "bridge name %q is not a valid interface name: at most 15 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, errkind.Errorf(errkind.Invalid, "subnet %q is not an IPv4 prefix like %s", s, DefaultSubnet)
	}
	if p.Bits() < 8 || p.Bits() > 28 {
		return netip.Prefix{}, errkind.Errorf(errkind.Invalid, "subnet %q must be between /8 and /28", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, errkind.Errorf(errkind.Invalid, "subnet %q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

func validID(id string) error {
	if len(id) > maxID || !idRE.MatchString(id) {
		return errkind.Errorf(errkind.Invalid, "sandbox id %q is not valid: at most %d lower-case letters, digits or '-', starting with a letter or digit", id, maxID)
	}
	return nil
}

// classifyFS marks permission errors as such; anything else is internal.
func classifyFS(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return errkind.E(errkind.Permission, err)
	}
	return err
}
