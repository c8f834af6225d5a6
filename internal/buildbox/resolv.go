package buildbox

import (
	"bufio"
	"net/netip"
	"os"
	"strings"
)

// hostResolvPaths are the host's resolver configuration and, should that
// name only systemd-resolved's stub on a loopback address, the list of the
// servers behind it.
var hostResolvPaths = [2]string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}

// hostResolvConf returns the resolver configuration a build step should
// see: paths[0], unless every nameserver in it is a loopback address (a
// local stub such as systemd-resolved's 127.0.0.53, unreachable from the
// step's own network namespace) and paths[1] exists.
func hostResolvConf(paths [2]string) string {
	if onlyLoopback(paths[0]) {
		if _, err := os.Stat(paths[1]); err == nil {
			return paths[1]
		}
	}
	return paths[0]
}

// onlyLoopback reports whether the resolv.conf at path names nameservers
// and all of them are loopback addresses.
func onlyLoopback(path string) bool {
	ns, bad := nameservers(path)
	if bad || len(ns) == 0 {
		return false
	}
	for _, ip := range ns {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// Nameservers returns the resolvers that build steps with network use:
// the nameservers of the resolv.conf they see (the build firewall lets
// steps reach them on port 53 even when they are private addresses).
func (b *Box) Nameservers() []netip.Addr {
	ns, _ := nameservers(b.cfg.ResolvConf)
	return ns
}

// nameservers reads the nameserver lines of a resolv.conf; bad reports a
// line it could not parse or a file it could not read.
func nameservers(path string) (ns []netip.Addr, bad bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(fields[1])
		if err != nil {
			bad = true
			continue
		}
		ns = append(ns, ip.WithZone(""))
	}
	return ns, bad || sc.Err() != nil
}
