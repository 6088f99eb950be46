package main

import (
	"os"
	"os/signal"
	"syscall"
)

// onHangup calls reload for every SIGHUP until the returned stop is called:
// the one place callctl handles SIGHUP (App.Reload: the configuration's
// reloadable keys and the SIP TLS certificate; `callctl config reload`
// reaches the same App.Reload through the API). Reloads run one at a time,
// on one goroutine; stop waits for the one in progress.
func onHangup(reload func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-ch:
				reload()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		<-finished
	}
}
