package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// netnsEnv marks a harness that runs in the network namespace enterNetns made
// for it; its value is the congestion control to give the loopback there.
const netnsEnv = "PROXY_HARNESS_NETNS"

const ccPath = "/proc/sys/net/ipv4/tcp_congestion_control"

// enterNetns runs the harness, its children and its load generator in a
// network namespace of their own whose TCP uses the congestion control cc
// ("host": the host's namespace and settings). It replaces the process with
// unshare(1), which runs the harness again; that run sets the namespace up in
// setupNetns. It returns without doing anything (and says why) when it cannot:
// the harness is not root, or unshare or ip(8) is missing.
//
// Why: every stream crosses loopback, where the kernel's default congestion
// control decides who pays for TCP. With BBR (the default of some images,
// this one's included) and no fq qdisc, TCP paces with its own high-resolution
// timers; on loopback they fire on the CPU of the receiver that holds the
// stream back, so a proxy that hashes an upload pays for its client's pacing:
// 0.2 to 0.25 s of CPU per GiB more than with CUBIC, about a third of a
// SHA-256 pass, none of it the proxy's work. A host with a NIC paces in its
// qdisc or not at all. A namespace of its own gives every run the same TCP
// without touching the host's.
func enterNetns(cc string) {
	if cc == "host" || os.Getenv(netnsEnv) != "" {
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err == nil {
		_, err = exec.LookPath("ip")
	}
	if err == nil && os.Geteuid() != 0 {
		err = fmt.Errorf("not root")
	}
	var exe string
	if err == nil {
		exe, err = os.Executable()
	}
	if err != nil {
		fmt.Printf("harness: the host's network namespace (%v), TCP congestion control %s\n", err, congestionControl())
		return
	}
	env := append(os.Environ(), netnsEnv+"="+cc)
	err = syscall.Exec(unshare, append([]string{"unshare", "--net", "--", exe}, os.Args[1:]...), env)
	fmt.Printf("harness: the host's network namespace (unshare: %v), TCP congestion control %s\n", err, congestionControl())
}

// setupNetns brings the loopback of the harness's own namespace up and sets
// its congestion control; it does nothing in the host's namespace.
func setupNetns() error {
	cc := os.Getenv(netnsEnv)
	if cc == "" {
		return nil
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	if err := os.WriteFile(ccPath, []byte(cc), 0); err != nil {
		return fmt.Errorf("TCP congestion control %q: %w (see %s)", cc, err, "/proc/sys/net/ipv4/tcp_available_congestion_control")
	}
	return nil
}

// netDesc says where the harness's sockets are and which congestion control
// their TCP uses.
func netDesc() string {
	if os.Getenv(netnsEnv) != "" {
		return "loopback in a network namespace of its own, TCP " + congestionControl()
	}
	return "the host's loopback, TCP " + congestionControl()
}

func congestionControl() string {
	b, err := os.ReadFile(ccPath)
	if err != nil {
		return "(congestion control unknown)"
	}
	return strings.TrimSpace(string(b))
}
