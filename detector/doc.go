// Package detector keeps EWMA baselines of per-tick traffic counts and decides
// when a volumetric flood is under way and which sources or prefixes to ban.
//
// It is pure Go: no I/O, no clocks, no kernel or capture libraries. Counts come
// in as a Tick (produced alike by the pcap replay source and the live XDP
// source in package capture), and decisions go out as Events and Rules through
// small interfaces, so every decision can be tested in ordinary unit tests and
// replay and live share one decision path.
package detector
