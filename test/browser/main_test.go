package browser

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// netnsEnv marks the copy of the test binary that runs inside the private
// network namespace.
const netnsEnv = "CALLCTL_BROWSER_TEST_NETNS"

func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" {
		os.Exit(runInNetworkNamespace())
	}
	if err := loopbackOnly(); err != nil {
		fmt.Fprintf(os.Stderr, "browser tests: in the private network namespace: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// runInNetworkNamespace runs this test binary again, with the same flags, in
// a new network namespace (clone(2) with CLONE_NEWNET), and returns its exit
// code.
func runInNetworkNamespace() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "browser tests: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode()
	case errors.Is(err, syscall.EPERM):
		fmt.Fprintf(os.Stderr, "browser tests: cannot create a network namespace (%v): they run Chromium, callctl and SIPp on a private loopback and need root (CAP_SYS_ADMIN)\n", err)
		return 1
	default:
		fmt.Fprintf(os.Stderr, "browser tests: running in a network namespace: %v\n", err)
		return 1
	}
}

// loopbackOnly checks that lo is the only interface, as in a new network
// namespace, and brings it up.
func loopbackOnly() error {
	ifaces, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifaces {
		if i.Name != "lo" {
			return fmt.Errorf("interface %s is here too; want lo alone", i.Name)
		}
	}
	return loopbackUp()
}

// loopbackUp sets IFF_UP on lo, which starts down in a new namespace (as
// `ip link set lo up` does).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}
