// Package daemon runs floodguard as a service: it attaches (or adopts) the
// XDP program, feeds the live map counts through the one detector replay
// also uses, writes the detector's decisions into the kernel as drop rules,
// keeps the detector's state across restarts and reloads its configuration
// on SIGHUP.
package daemon
