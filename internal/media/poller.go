package media

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Endpoint sockets are read by a few pollers, one per CPU the Go runtime
// uses, each an epoll set drained by one goroutine that handles every
// readable socket inline: the packet is read, checked and relayed (or
// tapped, forked) before the next. Compared with a goroutine per socket
// parked in Go's network poller, a packet costs at most a share of one
// goroutine wake-up (none while the set keeps having something ready, as
// under load), with the two system calls (recvfrom, sendto) made raw. It
// also saves two goroutine stacks and two read buffers per endpoint.
//
// A poller's goroutine runs while sockets are registered with it: the first
// registration starts it, and the removal of the last stops it (and waits),
// so an idle process, or a test that closed its endpoints, has none.

// pollerSet is the process's pollers; endpoints are spread round-robin.
var pollerSet = struct {
	once  sync.Once
	slots []*pollerSlot
	next  atomic.Uint32
}{}

func pickPoller() *pollerSlot {
	pollerSet.once.Do(func() {
		n := runtime.GOMAXPROCS(0)
		pollerSet.slots = make([]*pollerSlot, n)
		for i := range pollerSet.slots {
			pollerSet.slots[i] = &pollerSlot{}
		}
	})
	return pollerSet.slots[int(pollerSet.next.Add(1))%len(pollerSet.slots)]
}

// pollerSlot holds the running poller of one slot, if any.
type pollerSlot struct {
	mu  sync.Mutex
	cur *poller // nil when no socket is registered
}

// pollTarget is what a registered socket's readiness is handed to.
type pollTarget struct {
	e    *Endpoint
	rtcp bool // the endpoint's RTCP socket, else its RTP one
}

// poller is one epoll set and the goroutine that drains it.
type poller struct {
	epfd, wakefd int
	file         *os.File // epfd, for Go's runtime poller; closing it closes epfd
	// targets maps a registered fd to what handles it; only this poller's
	// goroutine reads it, under no lock, so it is changed only between
	// batches: registrations are queued and applied by the goroutine.
	targets map[int32]pollTarget
	count   int // registered sockets; guarded by the slot's mu

	pendingMu sync.Mutex
	pending   []pollChange

	// batch is odd while the goroutine handles a batch of events; Close of
	// an endpoint waits for the batch in progress to end before closing the
	// sockets, so no read can hit a reused descriptor.
	batch atomic.Uint64
	done  chan struct{}

	buf    [maxPacket]byte
	sa     unix.RawSockaddrAny
	events [128]unix.EpollEvent
}

type pollChange struct {
	fd     int32
	target pollTarget // zero: remove
}

// register adds the endpoint's sockets to a poller, starting it if needed.
func (s *pollerSlot) register(e *Endpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.cur
	if p == nil {
		var err error
		if p, err = newPoller(); err != nil {
			return err
		}
		s.cur = p
		go p.run()
	}
	p.queue(pollChange{fd: int32(e.rtp.sock.fd), target: pollTarget{e: e}},
		pollChange{fd: int32(e.rtcp.sock.fd), target: pollTarget{e: e, rtcp: true}})
	for _, fd := range []int{e.rtp.sock.fd, e.rtcp.sock.fd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			p.queue(pollChange{fd: int32(e.rtp.sock.fd)}, pollChange{fd: int32(e.rtcp.sock.fd)})
			unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, e.rtp.sock.fd, nil)
			s.stopIfIdleLocked(p)
			return err
		}
	}
	p.count += 2
	e.poller = p
	return nil
}

// unregister removes the endpoint's sockets and returns once the poller
// can no longer be handling them; the last one out stops the poller and
// waits for its goroutine.
func (s *pollerSlot) unregister(e *Endpoint) {
	s.mu.Lock()
	p := e.poller
	for _, fd := range []int{e.rtp.sock.fd, e.rtcp.sock.fd} {
		unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	p.queue(pollChange{fd: int32(e.rtp.sock.fd)}, pollChange{fd: int32(e.rtcp.sock.fd)})
	p.count -= 2
	stopped := s.stopIfIdleLocked(p)
	s.mu.Unlock()
	if stopped {
		<-p.done
		return
	}
	p.awaitBatch()
}

// stopIfIdleLocked tells an idle poller to stop and detaches it from the
// slot, so the next registration starts a new one.
func (s *pollerSlot) stopIfIdleLocked(p *poller) bool {
	if p.count > 0 {
		return false
	}
	s.cur = nil
	p.wake()
	return true
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, err
	}
	// Go's runtime poller watches the set itself (see run); it needs the
	// descriptor non-blocking to take it on.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, err
	}
	return &poller{epfd: epfd, wakefd: wakefd, file: os.NewFile(uintptr(epfd), "callctl-media-epoll"),
		targets: map[int32]pollTarget{}, done: make(chan struct{})}, nil
}

// pendingWake is how many queued changes wake the poller to apply them. It
// applies them before each batch of packets anyway; without packets (calls
// with no RTP yet, signalling floods) the queue, and every endpoint it
// names, would otherwise be kept until the next packet.
const pendingWake = 64

func (p *poller) queue(changes ...pollChange) {
	p.pendingMu.Lock()
	p.pending = append(p.pending, changes...)
	full := len(p.pending) >= pendingWake
	p.pendingMu.Unlock()
	if full {
		p.wake() // not a stop while sockets are registered: see handle
	}
}

func (p *poller) wake() {
	var one = [8]byte{1}
	unix.Write(p.wakefd, one[:])
}

// awaitBatch returns once the batch of events in progress, if any, is over.
func (p *poller) awaitBatch() {
	b := p.batch.Load()
	if b%2 == 0 {
		return
	}
	for p.batch.Load() == b {
		time.Sleep(20 * time.Microsecond)
	}
}

// applyPending brings targets up to date with the queued changes.
func (p *poller) applyPending() {
	p.pendingMu.Lock()
	for _, c := range p.pending {
		if c.target.e == nil {
			delete(p.targets, c.fd)
		} else {
			p.targets[c.fd] = c.target
		}
	}
	clear(p.pending) // the backing array must not keep closed endpoints alive
	p.pending = p.pending[:0]
	p.pendingMu.Unlock()
}

// run is the poller's goroutine. It waits in Go's own network poller for
// the epoll set to have something ready, never in a blocking epoll_wait: a
// goroutine blocked in a system call keeps its thread and P in a syscall
// state that the runtime's sysmon keeps checking and taking back, which at
// low packet rates cost more than the packets. Then it drains the set with
// non-blocking waits, handling one datagram per ready socket per round
// (level-triggered: a socket with more queued is reported again at once),
// until a round finds nothing ready.
func (p *poller) run() {
	defer close(p.done)
	defer unix.Close(p.wakefd)
	defer p.file.Close() // the epoll set
	rc, err := p.file.SyscallConn()
	if err != nil {
		return
	}
	stop := false
	for !stop {
		err := rc.Read(func(fd uintptr) bool {
			for {
				n := p.ready(int(fd))
				if n <= 0 {
					return false // nothing ready: park until the set is readable
				}
				if p.handle(n) {
					stop = true
					return true
				}
			}
		})
		if err != nil {
			return // the set was closed under us: the poller cannot go on
		}
	}
}

// ready collects the ready events without waiting (epoll_pwait with a zero
// timeout, which cannot block, hence RawSyscall).
func (p *poller) ready(epfd int) int {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), 0, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(n)
}

// handle handles n ready events and reports whether the poller must stop.
func (p *poller) handle(n int) bool {
	p.batch.Add(1)
	p.applyPending()
	now := time.Now()
	stop := false
	for i := range n {
		fd := p.events[i].Fd
		if int(fd) == p.wakefd {
			stop = true
			continue
		}
		t, ok := p.targets[fd]
		if !ok {
			continue // removed since the wait began
		}
		if t.rtcp {
			t.e.readRTCPOnce(p, now)
		} else {
			t.e.readRTPOnce(p, now)
		}
	}
	p.batch.Add(1)
	if !stop {
		return false
	}
	var drain [8]byte
	unix.Read(p.wakefd, drain[:])
	// Stop only if still idle: a wake from a stop that raced a new
	// registration on this poller is not a stop. (A stopped poller is
	// detached from its slot, so nothing registers on it after the wake
	// that stops it.)
	return p.idle()
}

// idle reports whether no socket is registered: the pending removals have
// emptied the targets.
func (p *poller) idle() bool {
	p.applyPending()
	return len(p.targets) == 0
}
