// Package lab builds small networks of Linux network namespaces for
// floodguard's end-to-end tests and its live demo, and drives traffic
// through them: a frame sender (floods at a target rate), a tiny HTTP server,
// a benign HTTP client that counts what it is served, a UDP sink that counts
// what gets through, and commands (the daemon, hping3) started inside a
// namespace with their JSON logs followed live.
//
// Everything a Lab creates is named after the Lab (the process id and a
// random tag), so parallel runs do not clash, and Close removes it:
// namespaces (and with them every link and address in them), the private
// bpffs mount, the sockets and the processes started in it. A later New also
// removes what a lab left behind when its process was killed before Close
// (as by `go test -timeout`).
//
// Addresses are those set aside for tests: 198.18.0.0/15 and 2001:db8::/32.
// The lab refuses to configure, send from or send to any other address.
//
// # Running Go code inside a namespace
//
// A socket belongs to the network namespace of the thread that created it,
// for its whole life, whichever thread uses it later. So the lab runs only
// socket creation inside a namespace (Netns.Do): a fresh goroutine locks
// itself to an OS thread, moves that thread into the namespace with
// setns(2), creates the socket (a packet socket bound to an interface, a
// listener, a dialled connection) and returns without unlocking, so the Go
// runtime ends the thread instead of reusing it in the wrong namespace
// (and since Go 1.10 never clones new threads from it). The sockets are then
// used from ordinary goroutines. There is no helper process and no hidden
// mode of any binary.
//
// External commands (floodguard run, hping3) run under `ip netns exec`, in
// a process group of their own, with a parent death signal so they do not
// outlive a killed test. That signal is tied to the thread that started the
// command, not the process, so every command is started from one thread
// kept for the life of the process.
//
// `ip netns exec` mounts a fresh /sys in the command's own mount namespace,
// which hides /sys/fs/bpf: pins for a daemon run that way go on the lab's
// private bpffs mount (Lab.BPFFS), which the command still sees.
package lab
