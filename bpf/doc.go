// Package bpf loads, attaches and reads floodguard's XDP program: it counts
// frames per source address and protocol class and drops what drop rules
// name.
package bpf
