// Package procstat reads what the live benchmarks measure of a process and
// of the machine, from /proc (and the calling thread's CPU clock): CPU time, resident memory and its high-water
// mark, and the machine's busy CPU time. Each reader is a file read plus a
// parser on the file's text, so the parsers are tested on literal /proc
// text without root.
package procstat
