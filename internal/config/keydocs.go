package config

// KeyDocs is the one-line comment of every key of the config file, by
// dotted key (the fields of a list's entries under the list's key).
// `floodguard config defaults` and deploy/floodguard.yaml print them; a
// test fails when a key has none, so a new key must be documented here.
var KeyDocs = func() map[string]string {
	m := map[string]string{
		"tick":           "Length of one measurement tick (100ms or more).",
		"warm_up":        "After start, only floods above the ceilings are acted on while baselines are learnt.",
		"half_life":      "Half-life of every moving average (rate and variance).",
		"prior_quantile": "Quantile of well-behaved keys' rates used as the baseline of a key with no history (0.5..0.9999).",

		"prefixes":      "Source prefix lengths tracked as keys of their own.",
		"prefixes.ipv4": "IPv4 prefix lengths.",
		"prefixes.ipv6": "IPv6 prefix lengths.",

		"distributed":                   "Floods no single source or prefix explains: the smallest set of out-of-band sources that brings the aggregate back to baseline.",
		"distributed.min_source_pps":    "A source below this rate is never a distributed-flood contributor (protects flash crowds).",
		"distributed.min_excess_share":  "Ban only if the chosen set removes at least this share of the excess.",
		"distributed.reflection_share":  "One UDP source port with this share of a UDP excess makes it a reflection flood on that port.",
		"distributed.max_bans_per_tick": "Most distributed bans one tick may add.",

		"bans":                 "Ban decisions.",
		"bans.ttl":             "First ban's lifetime; each repeat offence doubles it up to max_ttl.",
		"bans.max_ttl":         "Longest ban (also caps `floodguard block --ttl`).",
		"bans.forget_after":    "How long an offence is remembered for doubling the TTL.",
		"bans.max_active":      "Most active bans; past it new bans are refused and reported.",
		"bans.max_legit_share": "Largest share of legitimate-looking traffic one prefix ban may drop.",
		"bans.allowlist":       "CIDRs never banned, beside the host's own addresses, gateways and loopback.",
		"bans.dry_run":         "Decide, log and report bans, but install no rule.",

		"tracking":                   "Bounds on the detector's memory.",
		"tracking.max_keys":          "Most tracked sources plus prefixes; past it new keys are judged against the prior but not remembered.",
		"tracking.idle_timeout":      "Forget a key unseen this long.",
		"tracking.probation_timeout": "Forget sooner a key seen in fewer than three ticks (spoofed floods).",

		"upstream":                         "BGP FlowSpec escalation to the routers upstream: off without this section (uncomment it to turn it on).",
		"upstream.bgp":                     "The embedded BGP speaker (GoBGP); it connects out to its peers.",
		"upstream.bgp.router_id":           "BGP router id (an IPv4 address of this host).",
		"upstream.bgp.local_as":            "This host's AS number.",
		"upstream.bgp.peers":               "Routers to peer with.",
		"upstream.bgp.peers.address":       "the router's address",
		"upstream.bgp.peers.as":            "its AS number",
		"upstream.bgp.peers.port":          "its BGP port (default 179)",
		"upstream.bgp.peers.password":      "TCP MD5 password, never inline:",
		"upstream.bgp.peers.password.file": "read from this file",
		"upstream.bgp.peers.password.env":  "or from this environment variable",
		"upstream.bgp.peers.hold_time":     "BGP hold time",
		"upstream.escalate_pps":            "Attacks at or above this rate (pps) are announced upstream (0: never).",
		"upstream.escalate_bps":            "The same in bits per second (0: off); either threshold triggers.",
		"upstream.flowspec":                "Announce FlowSpec rules (RFC 8955/8956) for the attack's rules.",
		"upstream.max_announcements":       "Most rules announced at once; past it refusals are counted.",
		"upstream.blackhole":               "Remotely triggered blackhole of the protected address (takes the server offline): a last resort.",
		"upstream.blackhole.enabled":       "Announce the blackhole when an attack reaches its thresholds.",
		"upstream.blackhole.community":     "The blackhole community (RFC 7999).",
		"upstream.blackhole.pps":           "Blackhole at or above this rate (pps; 0: off).",
		"upstream.blackhole.bps":           "Blackhole at or above this rate (bits/s; 0: off).",

		"signatures":                    "Signature rules: drop a flood by what its packets share (protocol, ports, length).",
		"signatures.enabled":            "Let the detector derive and install signature rules.",
		"signatures.min_excess_share":   "A signature must cover at least this share of the attack's excess.",
		"signatures.max_baseline_share": "A signature may cover at most this share of the class's learnt baseline.",
		"signatures.rate_multiple":      "Rate-limit to this multiple of the matched traffic's baseline instead of dropping, when it has one.",
		"signatures.min_baseline_pps":   "Least baseline (pps, exempt sources aside) that counts as real for rate_multiple.",
		"signatures.max_rules":          "Most signature rules in force, the detector's and operators' together.",
		"signatures.max_exempt":         "Most sources exempt from signature rules (allowlist, host, learnt clients).",

		"daemon":                     "The daemon (floodguard run).",
		"daemon.interface":           "The interface to protect (or pass --interface).",
		"daemon.attach_mode":         "XDP mode: auto (native, else generic with a warning), native or generic.",
		"daemon.pin_dir":             "Where the program, link and maps are pinned (on bpffs; mounted there if it is not).",
		"daemon.state_dir":           "The detector snapshot (systemd StateDirectory).",
		"daemon.runtime_dir":         "The control socket and lock file (systemd RuntimeDirectory).",
		"daemon.snapshot_interval":   "How often the detector state is saved.",
		"daemon.max_sources":         "Size of the kernel's source map, when it is created.",
		"daemon.max_rules":           "Size of the kernel's rule map, when it is created.",
		"daemon.source_idle_timeout": "Remove sources silent this long from the kernel map.",
		"daemon.admit_budget":        "New sources per CPU and tick given a kernel entry at once.",
		"daemon.admit_after":         "Past that budget, packets a new source sends before it gets one (1-4).",
		"daemon.trips":               "Ban a flooding source as soon as it crosses its level, mid-tick.",
		"daemon.allow_host":          "Never ban the host's own addresses, default gateways and loopback.",
		"daemon.host_refresh":        "How often the host's addresses and gateways are rediscovered.",
		"daemon.metrics_listen":      "Prometheus metrics on http://ADDR/metrics (\"\" = off; prefer 127.0.0.1:9797 to :9797).",

		"paging":                            "Paging on-call staff (README.md, \"Paging on-call staff\"); secrets come from files or environment variables only.",
		"paging.host":                       "Names this machine in dedup keys and summaries (\"\" = the hostname).",
		"paging.quiet_period":               "How long every attack must stay ended before the incident resolves.",
		"paging.update_interval":            "Least time between two updates of one incident.",
		"paging.holding_grace":              "How long traffic may stay over threshold before bans count as not holding.",
		"paging.page_flash_crowds":          "Page for aggregate attacks on established TCP alone with nothing banned.",
		"paging.outbox_dir":                 "Keeps undelivered pages across restarts (\"\" = STATE_DIR/outbox).",
		"paging.severity":                   "Severity rules, tried in order; the first that matches sets the incident's severity.",
		"paging.severity[]":                 "Each rule's keys (all set conditions must hold):",
		"paging.severity.severity":          "The severity: info, warning, error or critical.",
		"paging.severity.min_peak_pps":      "Least peak packet rate of the incident.",
		"paging.severity.min_peak_bps":      "Least peak bit rate of the incident.",
		"paging.severity.min_dropped_share": "Least share of all traffic being dropped now (0-1).",
		"paging.severity.bans_not_holding":  "true: only incidents whose bans do not hold.",
		"paging.default_severity":           "Severity when no rule matches.",
		"paging.sinks":                      "Where pages go, e.g. {name: pd, type: pagerduty, routing_key: {file: /etc/floodguard/pagerduty.key}}.",
		"paging.sinks[]":                    "Each sink's keys:",
		"paging.sinks.name":                 "Names the sink in logs and metrics (default: its type).",
		"paging.sinks.type":                 "pagerduty, alertmanager, slack, webhook or exec.",
		"paging.sinks.url":                  "Alertmanager's base URL (required), PagerDuty's events endpoint (default the public one).",
		"paging.sinks.routing_key":          "PagerDuty's integration key, a secret:",
		"paging.sinks.webhook_url":          "Slack's incoming webhook URL or the webhook's URL, a secret:",
		"paging.sinks.hmac_key":             "Signs the webhook's bodies, a secret:",
		"paging.sinks.command":              "The exec hook: program and arguments.",
		"paging.sinks.labels":               "Extra Alertmanager labels (e.g. team, env).",
		"paging.sinks.timeout":              "Bound on one delivery attempt (default 10s).",
		"paging.sinks.queue_size":           "Most pages waiting for this sink (default 256).",
		"paging.sinks.min_interval":         "Least time between two requests to this sink (default 1s).",
		"paging.sinks.resend_interval":      "How often Alertmanager is sent open incidents again (default 1m).",
	}
	for _, s := range []string{"routing_key", "webhook_url", "hmac_key"} {
		m["paging.sinks."+s+".file"] = "read from this file"
		m["paging.sinks."+s+".env"] = "or from this environment variable"
	}
	scopes := map[string]string{"source": "one source address", "prefix": "one source prefix", "aggregate": "all traffic and each protocol class"}
	for s, what := range scopes {
		m[s] = "When " + what + " is anomalous: a rate over baseline+k·σ, baseline×ratio and the floor."
		m[s+".k"] = "Standard deviations over the baseline."
		m[s+".ratio"] = "Multiple of the baseline."
		m[s+".floor_pps"] = "Packet rate never anomalous below."
		m[s+".floor_bps"] = "Bit rate never anomalous below."
		m[s+".ceiling_pps"] = "Packet rate always anomalous above, even during the warm-up."
		m[s+".ceiling_bps"] = "Bit rate always anomalous above, even during the warm-up."
		m[s+".enter_ticks"] = "Consecutive ticks over threshold that start an attack."
		m[s+".exit_ticks"] = "Consecutive ticks under exit_fraction×threshold that end it."
		m[s+".exit_fraction"] = "Share of the threshold the rate must fall under to end an attack."
	}
	return m
}()
