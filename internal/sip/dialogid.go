package sip

// Tags returns the dialog's local tag (callctl's) and remote tag (the
// peer's), which with the Call-ID identify it (RFC 3261 12): a Replaces
// header names a dialog by them (RFC 3891).
func (l *Leg) Tags() (local, remote string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.localTag, l.remoteTag
}
