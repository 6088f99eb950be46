// Package demo is a simulated PBX with phones, for `callctl demo`: on
// loopback it places calls through a running callctl continuously, so that
// a supervisor console has live sessions to show, hold, transfer, forward,
// hang up and listen to. It speaks to callctl only over SIP and RTP, as a
// real PBX would, and imports nothing of callctl.
//
// The PBX ([Sim]) has one SIP address (UDP), which is callctl's trunk. Its
// phones 1001–1009 call 2001–2009 through callctl, [Options.MaxCalls] calls
// at a time; callctl sends each B leg back to the PBX, whose callee phone
// rings and then answers, says busy (486) or never answers (callctl's ring
// timeout, or the caller gives up with CANCEL). An answered call lasts 20–90
// seconds until one party, either one, hangs up with BYE. Every phone
// streams its own audible audio as PCMU RTP, 20 ms a packet: the 1xxx phones
// a bell-like melody, the 2xxx phones a low buzzing chatter, each phone its
// own tune.
//
// The phones do what callctl's operations ask of them: a re-INVITE is
// answered with the mirrored direction (RFC 3264 §6.1) and a held phone
// stops sending; INFO gets 200; a REFER (RFC 3515) is accepted with 202,
// the phone reports NOTIFY 100 Trying, calls the Refer-To number through
// callctl as a new call, reports that call's outcome in a final NOTIFY and,
// when it was answered, ends the old dialog with BYE.
//
// Every goroutine belongs to the Sim: when its context is cancelled (or Stop
// is called) the phones cancel or hang up their calls, waiting a few seconds
// at most for the answers, and Stop returns once everything has ended.
package demo
