#compdef edgectl

autoload -U is-at-least

_edgectl() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_edgectl_commands" \
"*::: :->edgectl" \
&& ret=0
    case $state in
    (edgectl)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-command-$line[1]:"
        case $line[1] in
            (status)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(stats)
_arguments "${_arguments_options[@]}" : \
'--interval=[Seconds between samples (rates are per second over it)]:INTERVAL:_default' \
'--top=[Only the N prefixes with the most packets, busiest first]:N:_default' \
'--registration=[Only the prefixes of this registration]:NAME:_default' \
'--within=[Only the prefixes inside this network (or equal to it)]:CIDR:_default' \
'--source=[Only the prefixes from this source (route\: any route table'\''s)]:SOURCE:(config live route)' \
'--domain=[A private domain'\''s prefixes, ports and PoPs (\`public\`\: the public domain'\''s); without it, the public prefixes and every port and PoP]:NAME:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--watch[Refresh in place every interval until interrupted]' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_edgectl__subcmd__stats_commands" \
"*::: :->stats" \
&& ret=0

    case $state in
    (stats)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-stats-command-$line[1]:"
        case $line[1] in
            (prefix)
_arguments "${_arguments_options[@]}" : \
'--domain=[A private domain'\''s prefixes, ports and PoPs (\`public\`\: the public domain'\''s); without it, the public prefixes and every port and PoP]:NAME:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
':prefix:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__stats__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-stats-help-command-$line[1]:"
        case $line[1] in
            (prefix)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(prefix)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_edgectl__subcmd__prefix_commands" \
"*::: :->prefix" \
&& ret=0

    case $state in
    (prefix)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-prefix-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
'--registration=[Registration name (default\: the prefix itself)]:REGISTRATION:_default' \
'--preference=[microsoft (cold potato) or internet (hot potato)]:PREFERENCE:_default' \
'(--pop)--policy=[The policy that picks its PoP (toward the customer)]:POLICY:_default' \
'--pop=[Shorthand for a one-member policy]:POP:_default' \
'--dscp=[DSCP class name or number]:DSCP:_default' \
'*--protect=[Peering ports the prefix is registered on (comma separated)]:PROTECT:_default' \
'--region=[Where the customer is, a region path (\`"world > europe > ie"\`)\: chooses among the members of geographic policies]:REGION:_default' \
'(--registration --preference --policy --pop --dscp --protect --region --domain)--file=[Register every prefix of FILE (\`-\`\: standard input) as one transaction, all or nothing\: one per line, written as this command'\''s arguments (\`PREFIX \[--pop NAME\] \[--dscp ef\] ...\`); blank lines and \`#\` comments are skipped]:FILE:_files' \
'--domain=[Register it in this private domain (\`public\`\: the default)\: replaces the domain'\''s entry for the network, always checked and applied through the whole pipeline]:NAME:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'::prefix -- The prefix (CIDR):_default' \
&& ret=0
;;
(del)
_arguments "${_arguments_options[@]}" : \
'(--domain)--file=[Remove every prefix of FILE (\`-\`\: standard input) as one transaction, all or nothing\: one prefix per line; blank lines and \`#\` comments are skipped]:FILE:_files' \
'--domain=[Remove it from this private domain (its live entry, or the file'\''s)]:NAME:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'::prefix:_default' \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
'--top=[Only the N prefixes with the most packets, busiest first]:N:_default' \
'--registration=[Only the prefixes of this registration]:NAME:_default' \
'--within=[Only the prefixes inside this network (or equal to it)]:CIDR:_default' \
'--source=[Only the prefixes from this source (route\: any route table'\''s)]:SOURCE:(config live route)' \
'--domain=[A private domain'\''s prefixes, ports and PoPs (\`public\`\: the public domain'\''s); without it, the public prefixes and every port and PoP]:NAME:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
'--domain=[A private domain'\''s prefix (\`public\`\: the default)]:NAME:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
':prefix:_default' \
&& ret=0
;;
(lookup)
_arguments "${_arguments_options[@]}" : \
'--domain=[Look ADDRESS up in this private domain (\`public\`\: the default)]:NAME:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
':address:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__prefix__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-prefix-help-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(del)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(lookup)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(pop)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_edgectl__subcmd__pop_commands" \
"*::: :->pop" \
&& ret=0

    case $state in
    (pop)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-pop-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
'--domain=[Only this domain'\''s PoPs (\`public\` or a private domain'\''s name)]:NAME:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(drain)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
':pop:_default' \
&& ret=0
;;
(undrain)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
':pop:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__pop__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-pop-help-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(drain)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(undrain)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(policy)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_edgectl__subcmd__policy_commands" \
"*::: :->policy" \
&& ret=0

    case $state in
    (policy)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-policy-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
'--domain=[Only this domain'\''s policies]:NAME:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
':policy:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__policy__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-policy-help-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(config)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_edgectl__subcmd__config_commands" \
"*::: :->config" \
&& ret=0

    case $state in
    (config)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-config-command-$line[1]:"
        case $line[1] in
            (check)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'::file -- The file (default\: the packaged config'\''s place):_files' \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--effective[The file with the live changes merged (the file'\''s entry for a network a live change names replaced or left out)]' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(reload)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--force[Apply the file even when it drops more of the file'\''s prefixes than \`\[daemon\] reload_max_shrink_percent\` allows (a guard against a file caught half-written)]' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__config__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-config-help-command-$line[1]:"
        case $line[1] in
            (check)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(reload)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(live)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_edgectl__subcmd__live_commands" \
"*::: :->live" \
&& ret=0

    case $state in
    (live)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-live-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(clear)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'()--all[Drop every live change]' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'*::networks -- The networks whose live changes to drop:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__live__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-live-help-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(clear)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(report)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_edgectl__subcmd__report_commands" \
"*::: :->report" \
&& ret=0

    case $state in
    (report)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-report-command-$line[1]:"
        case $line[1] in
            (latency)
_arguments "${_arguments_options[@]}" : \
'--window=[Seconds of history (at most 3600)]:WINDOW:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(customers)
_arguments "${_arguments_options[@]}" : \
'--by=[How rows are grouped]:BY:(prefix registration region)' \
'--since=[How far back\: a duration (90s, 15m, 2h, 1d) or an RFC 3339 time (cut to what \`\[latency\] retain_minutes\` keeps)]:DURATION:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__report__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-report-help-command-$line[1]:"
        case $line[1] in
            (latency)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(customers)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(events)
_arguments "${_arguments_options[@]}" : \
'--limit=[How many of the most recent events]:LIMIT:_default' \
'--interval=[Seconds between two looks at edged'\''s events with --follow]:INTERVAL:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'-f[Then keep printing new events as they happen (until interrupted); with --json, one event per line]' \
'--follow[Then keep printing new events as they happen (until interrupted); with --json, one event per line]' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(routes)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
":: :_edgectl__subcmd__routes_commands" \
"*::: :->routes" \
&& ret=0

    case $state in
    (routes)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-routes-command-$line[1]:"
        case $line[1] in
            (show)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
':prefix:_default' \
&& ret=0
;;
(anomalies)
_arguments "${_arguments_options[@]}" : \
'--since=[Only those raised or cleared since\: a duration back from now (90s, 15m, 2h, 1d) or an RFC 3339 time]:WHEN:_default' \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__routes__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-routes-help-command-$line[1]:"
        case $line[1] in
            (show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(anomalies)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(teardown)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'--socket=[edged'\''s control socket (\`daemon.socket_path\` in edged'\''s config)]:SOCKET:_files' \
'--timeout=[How long to wait for edged'\''s reply (seconds)]:TIMEOUT:_default' \
'--json[Print machine-readable JSON instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
':shell:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-help-command-$line[1]:"
        case $line[1] in
            (status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(stats)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__help__subcmd__stats_commands" \
"*::: :->stats" \
&& ret=0

    case $state in
    (stats)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-help-stats-command-$line[1]:"
        case $line[1] in
            (prefix)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(prefix)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__help__subcmd__prefix_commands" \
"*::: :->prefix" \
&& ret=0

    case $state in
    (prefix)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-help-prefix-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(del)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(lookup)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(pop)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__help__subcmd__pop_commands" \
"*::: :->pop" \
&& ret=0

    case $state in
    (pop)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-help-pop-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(drain)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(undrain)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(policy)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__help__subcmd__policy_commands" \
"*::: :->policy" \
&& ret=0

    case $state in
    (policy)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-help-policy-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(config)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__help__subcmd__config_commands" \
"*::: :->config" \
&& ret=0

    case $state in
    (config)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-help-config-command-$line[1]:"
        case $line[1] in
            (check)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(reload)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(live)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__help__subcmd__live_commands" \
"*::: :->live" \
&& ret=0

    case $state in
    (live)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-help-live-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(clear)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(report)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__help__subcmd__report_commands" \
"*::: :->report" \
&& ret=0

    case $state in
    (report)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-help-report-command-$line[1]:"
        case $line[1] in
            (latency)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(customers)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(events)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(routes)
_arguments "${_arguments_options[@]}" : \
":: :_edgectl__subcmd__help__subcmd__routes_commands" \
"*::: :->routes" \
&& ret=0

    case $state in
    (routes)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:edgectl-help-routes-command-$line[1]:"
        case $line[1] in
            (show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(anomalies)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(teardown)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_edgectl_commands] )) ||
_edgectl_commands() {
    local commands; commands=(
'status:The daemon\: version, uptime, config generation, ports, map fill' \
'stats:Packet and byte counters per action, reason, prefix, PoP and port, with rates when watching' \
'prefix:Registered prefixes' \
'pop:PoPs (next hops)' \
'policy:Policies and their selection tables' \
'config:Config file operations' \
'live:Live changes\: the prefixes added, replaced or removed with edgectl on top of the config file' \
'report:Reports' \
'events:Recent events\: protection violations, PoP state changes, fallbacks, interface changes, operators'\'' changes, route anomalies and holds, customer latency degradations and recoveries' \
'routes:Route analytics from the BGP speakers'\'' BMP feeds\: who announces the registered prefixes, hijacks, leaks, visibility, AS hops' \
'teardown:Remove the forwarder\: detach from every port, remove pins and state; edged exits' \
'completions:Print a shell completion script' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__completions_commands] )) ||
_edgectl__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl completions commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config_commands] )) ||
_edgectl__subcmd__config_commands() {
    local commands; commands=(
'check:Validate a config file without touching anything; prints every problem with its line' \
'show:The config file as edged last applied it; with --effective, the config edged runs\: the file with the live changes merged, as TOML' \
'diff:What the live changes add, replace and remove relative to the config file, as a diff of \`\[\[prefixes\]\]\` entries' \
'reload:Make edged re-read its config file and apply it as a diff (a bad config is rejected whole; the running state stays)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl config commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__check_commands] )) ||
_edgectl__subcmd__config__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl config check commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__diff_commands] )) ||
_edgectl__subcmd__config__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl config diff commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__help_commands] )) ||
_edgectl__subcmd__config__subcmd__help_commands() {
    local commands; commands=(
'check:Validate a config file without touching anything; prints every problem with its line' \
'show:The config file as edged last applied it; with --effective, the config edged runs\: the file with the live changes merged, as TOML' \
'diff:What the live changes add, replace and remove relative to the config file, as a diff of \`\[\[prefixes\]\]\` entries' \
'reload:Make edged re-read its config file and apply it as a diff (a bad config is rejected whole; the running state stays)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl config help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__help__subcmd__check_commands] )) ||
_edgectl__subcmd__config__subcmd__help__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl config help check commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__help__subcmd__diff_commands] )) ||
_edgectl__subcmd__config__subcmd__help__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl config help diff commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__help__subcmd__help_commands] )) ||
_edgectl__subcmd__config__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl config help help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__help__subcmd__reload_commands] )) ||
_edgectl__subcmd__config__subcmd__help__subcmd__reload_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl config help reload commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__help__subcmd__show_commands] )) ||
_edgectl__subcmd__config__subcmd__help__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl config help show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__reload_commands] )) ||
_edgectl__subcmd__config__subcmd__reload_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl config reload commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__config__subcmd__show_commands] )) ||
_edgectl__subcmd__config__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl config show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__events_commands] )) ||
_edgectl__subcmd__events_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl events commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help_commands] )) ||
_edgectl__subcmd__help_commands() {
    local commands; commands=(
'status:The daemon\: version, uptime, config generation, ports, map fill' \
'stats:Packet and byte counters per action, reason, prefix, PoP and port, with rates when watching' \
'prefix:Registered prefixes' \
'pop:PoPs (next hops)' \
'policy:Policies and their selection tables' \
'config:Config file operations' \
'live:Live changes\: the prefixes added, replaced or removed with edgectl on top of the config file' \
'report:Reports' \
'events:Recent events\: protection violations, PoP state changes, fallbacks, interface changes, operators'\'' changes, route anomalies and holds, customer latency degradations and recoveries' \
'routes:Route analytics from the BGP speakers'\'' BMP feeds\: who announces the registered prefixes, hijacks, leaks, visibility, AS hops' \
'teardown:Remove the forwarder\: detach from every port, remove pins and state; edged exits' \
'completions:Print a shell completion script' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__completions_commands] )) ||
_edgectl__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help completions commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__config_commands] )) ||
_edgectl__subcmd__help__subcmd__config_commands() {
    local commands; commands=(
'check:Validate a config file without touching anything; prints every problem with its line' \
'show:The config file as edged last applied it; with --effective, the config edged runs\: the file with the live changes merged, as TOML' \
'diff:What the live changes add, replace and remove relative to the config file, as a diff of \`\[\[prefixes\]\]\` entries' \
'reload:Make edged re-read its config file and apply it as a diff (a bad config is rejected whole; the running state stays)' \
    )
    _describe -t commands 'edgectl help config commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__config__subcmd__check_commands] )) ||
_edgectl__subcmd__help__subcmd__config__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help config check commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__config__subcmd__diff_commands] )) ||
_edgectl__subcmd__help__subcmd__config__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help config diff commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__config__subcmd__reload_commands] )) ||
_edgectl__subcmd__help__subcmd__config__subcmd__reload_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help config reload commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__config__subcmd__show_commands] )) ||
_edgectl__subcmd__help__subcmd__config__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help config show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__events_commands] )) ||
_edgectl__subcmd__help__subcmd__events_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help events commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__help_commands] )) ||
_edgectl__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__live_commands] )) ||
_edgectl__subcmd__help__subcmd__live_commands() {
    local commands; commands=(
'list:Every live change\: network, kind (added, replaced, removed), when, by whom, and the live entry' \
'clear:Drop live changes from the overlay (destructive\: the live entries are lost)\: each network goes back to what the config file says, its entry or nothing. One change, all or nothing' \
    )
    _describe -t commands 'edgectl help live commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__live__subcmd__clear_commands] )) ||
_edgectl__subcmd__help__subcmd__live__subcmd__clear_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help live clear commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__live__subcmd__list_commands] )) ||
_edgectl__subcmd__help__subcmd__live__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help live list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__policy_commands] )) ||
_edgectl__subcmd__help__subcmd__policy_commands() {
    local commands; commands=(
'list:Every policy\: method, members (up or down), its selection tables' \
'show:A policy'\''s members and its selection table summary' \
    )
    _describe -t commands 'edgectl help policy commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__policy__subcmd__list_commands] )) ||
_edgectl__subcmd__help__subcmd__policy__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help policy list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__policy__subcmd__show_commands] )) ||
_edgectl__subcmd__help__subcmd__policy__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help policy show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__pop_commands] )) ||
_edgectl__subcmd__help__subcmd__pop_commands() {
    local commands; commands=(
'list:Every PoP\: next hop, health (state, since, RTT, loss), encapsulation' \
'drain:Take a PoP out of every policy (counts as down)' \
'undrain:Put a drained PoP back (up again if its probe says so)' \
    )
    _describe -t commands 'edgectl help pop commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__pop__subcmd__drain_commands] )) ||
_edgectl__subcmd__help__subcmd__pop__subcmd__drain_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help pop drain commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__pop__subcmd__list_commands] )) ||
_edgectl__subcmd__help__subcmd__pop__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help pop list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__pop__subcmd__undrain_commands] )) ||
_edgectl__subcmd__help__subcmd__pop__subcmd__undrain_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help pop undrain commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__prefix_commands] )) ||
_edgectl__subcmd__help__subcmd__prefix_commands() {
    local commands; commands=(
'add:Register a prefix live (kept across restarts; replaces the config'\''s entry for the same prefix), or every prefix of a file in one transaction (--file)' \
'del:Remove a prefix (a config prefix stays removed until \`prefix add\`), or every prefix of a file in one transaction (--file)' \
'list:Every registered prefix and where it came from' \
'show:One registered prefix' \
'lookup:What a packet to or from ADDRESS gets right now\: prefix, preference, policy and the PoPs of its selection table' \
    )
    _describe -t commands 'edgectl help prefix commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__prefix__subcmd__add_commands] )) ||
_edgectl__subcmd__help__subcmd__prefix__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help prefix add commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__prefix__subcmd__del_commands] )) ||
_edgectl__subcmd__help__subcmd__prefix__subcmd__del_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help prefix del commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__prefix__subcmd__list_commands] )) ||
_edgectl__subcmd__help__subcmd__prefix__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help prefix list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__prefix__subcmd__lookup_commands] )) ||
_edgectl__subcmd__help__subcmd__prefix__subcmd__lookup_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help prefix lookup commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__prefix__subcmd__show_commands] )) ||
_edgectl__subcmd__help__subcmd__prefix__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help prefix show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__report_commands] )) ||
_edgectl__subcmd__help__subcmd__report_commands() {
    local commands; commands=(
'latency:RTT percentiles per PoP from the health probes' \
'customers:Customer round-trip times (edge ↔ customer host, measured passively from forwarded TCP)\: samples, min, p50, p90, p99, the objective and the share above it, per prefix, registration or region' \
    )
    _describe -t commands 'edgectl help report commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__report__subcmd__customers_commands] )) ||
_edgectl__subcmd__help__subcmd__report__subcmd__customers_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help report customers commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__report__subcmd__latency_commands] )) ||
_edgectl__subcmd__help__subcmd__report__subcmd__latency_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help report latency commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__routes_commands] )) ||
_edgectl__subcmd__help__subcmd__routes_commands() {
    local commands; commands=(
'show:Every path the monitored peers announce for PREFIX and its more-specifics\: peer, RIB, AS path, origin, communities, since when, and the anomaly it shows' \
'anomalies:Route anomalies\: the active ones, then the cleared ones edged keeps' \
    )
    _describe -t commands 'edgectl help routes commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__routes__subcmd__anomalies_commands] )) ||
_edgectl__subcmd__help__subcmd__routes__subcmd__anomalies_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help routes anomalies commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__routes__subcmd__show_commands] )) ||
_edgectl__subcmd__help__subcmd__routes__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help routes show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__stats_commands] )) ||
_edgectl__subcmd__help__subcmd__stats_commands() {
    local commands; commands=(
'prefix:Only one registered prefix' \
    )
    _describe -t commands 'edgectl help stats commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__stats__subcmd__prefix_commands] )) ||
_edgectl__subcmd__help__subcmd__stats__subcmd__prefix_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help stats prefix commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__status_commands] )) ||
_edgectl__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help status commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__help__subcmd__teardown_commands] )) ||
_edgectl__subcmd__help__subcmd__teardown_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl help teardown commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__live_commands] )) ||
_edgectl__subcmd__live_commands() {
    local commands; commands=(
'list:Every live change\: network, kind (added, replaced, removed), when, by whom, and the live entry' \
'clear:Drop live changes from the overlay (destructive\: the live entries are lost)\: each network goes back to what the config file says, its entry or nothing. One change, all or nothing' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl live commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__live__subcmd__clear_commands] )) ||
_edgectl__subcmd__live__subcmd__clear_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl live clear commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__live__subcmd__help_commands] )) ||
_edgectl__subcmd__live__subcmd__help_commands() {
    local commands; commands=(
'list:Every live change\: network, kind (added, replaced, removed), when, by whom, and the live entry' \
'clear:Drop live changes from the overlay (destructive\: the live entries are lost)\: each network goes back to what the config file says, its entry or nothing. One change, all or nothing' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl live help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__live__subcmd__help__subcmd__clear_commands] )) ||
_edgectl__subcmd__live__subcmd__help__subcmd__clear_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl live help clear commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__live__subcmd__help__subcmd__help_commands] )) ||
_edgectl__subcmd__live__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl live help help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__live__subcmd__help__subcmd__list_commands] )) ||
_edgectl__subcmd__live__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl live help list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__live__subcmd__list_commands] )) ||
_edgectl__subcmd__live__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl live list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__policy_commands] )) ||
_edgectl__subcmd__policy_commands() {
    local commands; commands=(
'list:Every policy\: method, members (up or down), its selection tables' \
'show:A policy'\''s members and its selection table summary' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl policy commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__policy__subcmd__help_commands] )) ||
_edgectl__subcmd__policy__subcmd__help_commands() {
    local commands; commands=(
'list:Every policy\: method, members (up or down), its selection tables' \
'show:A policy'\''s members and its selection table summary' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl policy help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__policy__subcmd__help__subcmd__help_commands] )) ||
_edgectl__subcmd__policy__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl policy help help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__policy__subcmd__help__subcmd__list_commands] )) ||
_edgectl__subcmd__policy__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl policy help list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__policy__subcmd__help__subcmd__show_commands] )) ||
_edgectl__subcmd__policy__subcmd__help__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl policy help show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__policy__subcmd__list_commands] )) ||
_edgectl__subcmd__policy__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl policy list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__policy__subcmd__show_commands] )) ||
_edgectl__subcmd__policy__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl policy show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__pop_commands] )) ||
_edgectl__subcmd__pop_commands() {
    local commands; commands=(
'list:Every PoP\: next hop, health (state, since, RTT, loss), encapsulation' \
'drain:Take a PoP out of every policy (counts as down)' \
'undrain:Put a drained PoP back (up again if its probe says so)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl pop commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__pop__subcmd__drain_commands] )) ||
_edgectl__subcmd__pop__subcmd__drain_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl pop drain commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__pop__subcmd__help_commands] )) ||
_edgectl__subcmd__pop__subcmd__help_commands() {
    local commands; commands=(
'list:Every PoP\: next hop, health (state, since, RTT, loss), encapsulation' \
'drain:Take a PoP out of every policy (counts as down)' \
'undrain:Put a drained PoP back (up again if its probe says so)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl pop help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__pop__subcmd__help__subcmd__drain_commands] )) ||
_edgectl__subcmd__pop__subcmd__help__subcmd__drain_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl pop help drain commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__pop__subcmd__help__subcmd__help_commands] )) ||
_edgectl__subcmd__pop__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl pop help help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__pop__subcmd__help__subcmd__list_commands] )) ||
_edgectl__subcmd__pop__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl pop help list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__pop__subcmd__help__subcmd__undrain_commands] )) ||
_edgectl__subcmd__pop__subcmd__help__subcmd__undrain_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl pop help undrain commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__pop__subcmd__list_commands] )) ||
_edgectl__subcmd__pop__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl pop list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__pop__subcmd__undrain_commands] )) ||
_edgectl__subcmd__pop__subcmd__undrain_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl pop undrain commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix_commands] )) ||
_edgectl__subcmd__prefix_commands() {
    local commands; commands=(
'add:Register a prefix live (kept across restarts; replaces the config'\''s entry for the same prefix), or every prefix of a file in one transaction (--file)' \
'del:Remove a prefix (a config prefix stays removed until \`prefix add\`), or every prefix of a file in one transaction (--file)' \
'list:Every registered prefix and where it came from' \
'show:One registered prefix' \
'lookup:What a packet to or from ADDRESS gets right now\: prefix, preference, policy and the PoPs of its selection table' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl prefix commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__add_commands] )) ||
_edgectl__subcmd__prefix__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix add commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__del_commands] )) ||
_edgectl__subcmd__prefix__subcmd__del_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix del commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__help_commands] )) ||
_edgectl__subcmd__prefix__subcmd__help_commands() {
    local commands; commands=(
'add:Register a prefix live (kept across restarts; replaces the config'\''s entry for the same prefix), or every prefix of a file in one transaction (--file)' \
'del:Remove a prefix (a config prefix stays removed until \`prefix add\`), or every prefix of a file in one transaction (--file)' \
'list:Every registered prefix and where it came from' \
'show:One registered prefix' \
'lookup:What a packet to or from ADDRESS gets right now\: prefix, preference, policy and the PoPs of its selection table' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl prefix help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__help__subcmd__add_commands] )) ||
_edgectl__subcmd__prefix__subcmd__help__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix help add commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__help__subcmd__del_commands] )) ||
_edgectl__subcmd__prefix__subcmd__help__subcmd__del_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix help del commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__help__subcmd__help_commands] )) ||
_edgectl__subcmd__prefix__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix help help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__help__subcmd__list_commands] )) ||
_edgectl__subcmd__prefix__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix help list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__help__subcmd__lookup_commands] )) ||
_edgectl__subcmd__prefix__subcmd__help__subcmd__lookup_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix help lookup commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__help__subcmd__show_commands] )) ||
_edgectl__subcmd__prefix__subcmd__help__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix help show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__list_commands] )) ||
_edgectl__subcmd__prefix__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix list commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__lookup_commands] )) ||
_edgectl__subcmd__prefix__subcmd__lookup_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix lookup commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__prefix__subcmd__show_commands] )) ||
_edgectl__subcmd__prefix__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl prefix show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__report_commands] )) ||
_edgectl__subcmd__report_commands() {
    local commands; commands=(
'latency:RTT percentiles per PoP from the health probes' \
'customers:Customer round-trip times (edge ↔ customer host, measured passively from forwarded TCP)\: samples, min, p50, p90, p99, the objective and the share above it, per prefix, registration or region' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl report commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__report__subcmd__customers_commands] )) ||
_edgectl__subcmd__report__subcmd__customers_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl report customers commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__report__subcmd__help_commands] )) ||
_edgectl__subcmd__report__subcmd__help_commands() {
    local commands; commands=(
'latency:RTT percentiles per PoP from the health probes' \
'customers:Customer round-trip times (edge ↔ customer host, measured passively from forwarded TCP)\: samples, min, p50, p90, p99, the objective and the share above it, per prefix, registration or region' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl report help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__report__subcmd__help__subcmd__customers_commands] )) ||
_edgectl__subcmd__report__subcmd__help__subcmd__customers_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl report help customers commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__report__subcmd__help__subcmd__help_commands] )) ||
_edgectl__subcmd__report__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl report help help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__report__subcmd__help__subcmd__latency_commands] )) ||
_edgectl__subcmd__report__subcmd__help__subcmd__latency_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl report help latency commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__report__subcmd__latency_commands] )) ||
_edgectl__subcmd__report__subcmd__latency_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl report latency commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__routes_commands] )) ||
_edgectl__subcmd__routes_commands() {
    local commands; commands=(
'show:Every path the monitored peers announce for PREFIX and its more-specifics\: peer, RIB, AS path, origin, communities, since when, and the anomaly it shows' \
'anomalies:Route anomalies\: the active ones, then the cleared ones edged keeps' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl routes commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__routes__subcmd__anomalies_commands] )) ||
_edgectl__subcmd__routes__subcmd__anomalies_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl routes anomalies commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__routes__subcmd__help_commands] )) ||
_edgectl__subcmd__routes__subcmd__help_commands() {
    local commands; commands=(
'show:Every path the monitored peers announce for PREFIX and its more-specifics\: peer, RIB, AS path, origin, communities, since when, and the anomaly it shows' \
'anomalies:Route anomalies\: the active ones, then the cleared ones edged keeps' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl routes help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__routes__subcmd__help__subcmd__anomalies_commands] )) ||
_edgectl__subcmd__routes__subcmd__help__subcmd__anomalies_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl routes help anomalies commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__routes__subcmd__help__subcmd__help_commands] )) ||
_edgectl__subcmd__routes__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl routes help help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__routes__subcmd__help__subcmd__show_commands] )) ||
_edgectl__subcmd__routes__subcmd__help__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl routes help show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__routes__subcmd__show_commands] )) ||
_edgectl__subcmd__routes__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl routes show commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__stats_commands] )) ||
_edgectl__subcmd__stats_commands() {
    local commands; commands=(
'prefix:Only one registered prefix' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl stats commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__stats__subcmd__help_commands] )) ||
_edgectl__subcmd__stats__subcmd__help_commands() {
    local commands; commands=(
'prefix:Only one registered prefix' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'edgectl stats help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__stats__subcmd__help__subcmd__help_commands] )) ||
_edgectl__subcmd__stats__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl stats help help commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__stats__subcmd__help__subcmd__prefix_commands] )) ||
_edgectl__subcmd__stats__subcmd__help__subcmd__prefix_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl stats help prefix commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__stats__subcmd__prefix_commands] )) ||
_edgectl__subcmd__stats__subcmd__prefix_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl stats prefix commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__status_commands] )) ||
_edgectl__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl status commands' commands "$@"
}
(( $+functions[_edgectl__subcmd__teardown_commands] )) ||
_edgectl__subcmd__teardown_commands() {
    local commands; commands=()
    _describe -t commands 'edgectl teardown commands' commands "$@"
}

if [ "$funcstack[1]" = "_edgectl" ]; then
    _edgectl "$@"
else
    compdef _edgectl edgectl
fi
