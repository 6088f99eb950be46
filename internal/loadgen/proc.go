package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTick = 100

// ProcStat is a process's CPU time and memory from /proc.
type ProcStat struct {
	UserTicks, SysTicks uint64 // utime, stime (/proc/<pid>/stat fields 14, 15)
	RSSKiB              uint64 // VmRSS (/proc/<pid>/status)
	HWMKiB              uint64 // VmHWM: the peak RSS since the process started
	Threads             int
}

// CPU is user plus system time.
func (p ProcStat) CPU() time.Duration {
	return time.Duration(p.UserTicks+p.SysTicks) * time.Second / clockTick
}

// ReadProcStat reads /proc/<pid>/stat and status; pid 0 means this process.
func ReadProcStat(pid int) (ProcStat, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	var p ProcStat
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return p, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return p, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return p, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if p.UserTicks, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return p, err
	}
	if p.SysTicks, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return p, err
	}
	st, err := os.ReadFile(dir + "/status")
	if err != nil {
		return p, err
	}
	sc := bufio.NewScanner(bytes.NewReader(st))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			p.RSSKiB, _ = strconv.ParseUint(strings.Fields(line)[1], 10, 64)
		case strings.HasPrefix(line, "VmHWM:"):
			p.HWMKiB, _ = strconv.ParseUint(strings.Fields(line)[1], 10, 64)
		case strings.HasPrefix(line, "Threads:"):
			p.Threads, _ = strconv.Atoi(strings.Fields(line)[1])
		}
	}
	return p, nil
}

// UDPDrops sums the kernel's receive-queue drop counters (/proc/net/udp,
// the last column) of the IPv4 UDP sockets whose local port is in
// [lo, hi]: datagrams that arrived while the socket's buffer was full.
func UDPDrops(lo, hi int) (uint64, error) {
	return udpDrops(func(port int) bool { return port >= lo && port <= hi })
}

// UDPDropsOfProcess sums the kernel's receive-queue drop counters of the
// IPv4 UDP sockets process pid has open (matched by inode from
// /proc/<pid>/fd): datagrams that arrived while the socket's buffer was
// full, for that process only.
func UDPDropsOfProcess(pid int) (uint64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0, err
	}
	var total uint64
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
		if i == 0 || len(f) < 13 || !inodes[f[9]] {
			continue
		}
		d, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
		total += d
	}
	return total, nil
}

func udpDrops(match func(port int) bool) (uint64, error) {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0, err
	}
	var total uint64
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 13 {
			continue
		}
		colon := strings.LastIndexByte(f[1], ':')
		port, err := strconv.ParseUint(f[1][colon+1:], 16, 16)
		if err != nil || !match(int(port)) {
			continue
		}
		d, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
		total += d
	}
	return total, nil
}

// socketDrops sums the drops of the generator's own sockets.
func (g *Generator) socketDrops() uint64 {
	ports := map[int]bool{}
	for _, c := range g.allMedia() {
		ports[int(c.addr.Port())] = true
	}
	ports[int(g.uacAddr.Port())] = true
	if g.uasAddr.IsValid() {
		ports[int(g.uasAddr.Port())] = true
	}
	d, _ := udpDrops(func(p int) bool { return ports[p] })
	return d
}

func (g *Generator) allMedia() []*mediaSocket {
	return append(append([]*mediaSocket(nil), g.uacMedia...), g.uasMedia...)
}
