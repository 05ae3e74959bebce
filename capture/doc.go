// Package capture provides the sources of per-tick counts for the detector:
// pcap and pcapng replay now, live XDP maps later.
package capture
