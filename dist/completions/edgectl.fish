# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_edgectl_global_optspecs
    string join \n socket= json timeout= h/help V/version
end

function __fish_edgectl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_edgectl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_edgectl_using_subcommand
    set -l cmd (__fish_edgectl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c edgectl -n "__fish_edgectl_needs_command" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_needs_command" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_needs_command" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_needs_command" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_needs_command" -s V -l version -d 'Print version'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "status" -d 'The daemon: version, uptime, config generation, ports, map fill'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "stats" -d 'Packet and byte counters per action, reason, prefix, PoP and port, with rates when watching'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "prefix" -d 'Registered prefixes'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "pop" -d 'PoPs (next hops)'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "policy" -d 'Policies and their selection tables'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "config" -d 'Config file operations'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "live" -d 'Live changes: the prefixes added, replaced or removed with edgectl on top of the config file'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "report" -d 'Reports'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "events" -d 'Recent events: protection violations, PoP state changes, fallbacks, interface changes, operators\' changes, route anomalies and holds, customer latency degradations and recoveries'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "routes" -d 'Route analytics from the BGP speakers\' BMP feeds: who announces the registered prefixes, hijacks, leaks, visibility, AS hops'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "teardown" -d 'Remove the forwarder: detach from every port, remove pins and state; edged exits'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c edgectl -n "__fish_edgectl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand status" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand status" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand status" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand status" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l interval -d 'Seconds between samples (rates are per second over it)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l top -d 'Only the N prefixes with the most packets, busiest first' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l registration -d 'Only the prefixes of this registration' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l within -d 'Only the prefixes inside this network (or equal to it)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l source -d 'Only the prefixes from this source (route: any route table\'s)' -r -f -a "config\t''
live\t''
route\t''"
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l domain -d 'A private domain\'s prefixes, ports and PoPs (`public`: the public domain\'s); without it, the public prefixes and every port and PoP' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l watch -d 'Refresh in place every interval until interrupted'
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -f -a "prefix" -d 'Only one registered prefix'
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and not __fish_seen_subcommand_from prefix help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and __fish_seen_subcommand_from prefix" -l domain -d 'A private domain\'s prefixes, ports and PoPs (`public`: the public domain\'s); without it, the public prefixes and every port and PoP' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and __fish_seen_subcommand_from prefix" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and __fish_seen_subcommand_from prefix" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and __fish_seen_subcommand_from prefix" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and __fish_seen_subcommand_from prefix" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and __fish_seen_subcommand_from help" -f -a "prefix" -d 'Only one registered prefix'
complete -c edgectl -n "__fish_edgectl_using_subcommand stats; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -f -a "add" -d 'Register a prefix live (kept across restarts; replaces the config\'s entry for the same prefix), or every prefix of a file in one transaction (--file)'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -f -a "del" -d 'Remove a prefix (a config prefix stays removed until `prefix add`), or every prefix of a file in one transaction (--file)'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -f -a "list" -d 'Every registered prefix and where it came from'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -f -a "show" -d 'One registered prefix'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -f -a "lookup" -d 'What a packet to or from ADDRESS gets right now: prefix, preference, policy and the PoPs of its selection table'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and not __fish_seen_subcommand_from add del list show lookup help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l registration -d 'Registration name (default: the prefix itself)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l preference -d 'microsoft (cold potato) or internet (hot potato)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l policy -d 'The policy that picks its PoP (toward the customer)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l pop -d 'Shorthand for a one-member policy' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l dscp -d 'DSCP class name or number' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l protect -d 'Peering ports the prefix is registered on (comma separated)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l region -d 'Where the customer is, a region path (`"world > europe > ie"`): chooses among the members of geographic policies' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l file -d 'Register every prefix of FILE (`-`: standard input) as one transaction, all or nothing: one per line, written as this command\'s arguments (`PREFIX [--pop NAME] [--dscp ef] ...`); blank lines and `#` comments are skipped' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l domain -d 'Register it in this private domain (`public`: the default): replaces the domain\'s entry for the network, always checked and applied through the whole pipeline' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from del" -l file -d 'Remove every prefix of FILE (`-`: standard input) as one transaction, all or nothing: one prefix per line; blank lines and `#` comments are skipped' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from del" -l domain -d 'Remove it from this private domain (its live entry, or the file\'s)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from del" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from del" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from del" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from del" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from list" -l top -d 'Only the N prefixes with the most packets, busiest first' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from list" -l registration -d 'Only the prefixes of this registration' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from list" -l within -d 'Only the prefixes inside this network (or equal to it)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from list" -l source -d 'Only the prefixes from this source (route: any route table\'s)' -r -f -a "config\t''
live\t''
route\t''"
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from list" -l domain -d 'A private domain\'s prefixes, ports and PoPs (`public`: the public domain\'s); without it, the public prefixes and every port and PoP' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from list" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from list" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from show" -l domain -d 'A private domain\'s prefix (`public`: the default)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from show" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from show" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from lookup" -l domain -d 'Look ADDRESS up in this private domain (`public`: the default)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from lookup" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from lookup" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from lookup" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from lookup" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from help" -f -a "add" -d 'Register a prefix live (kept across restarts; replaces the config\'s entry for the same prefix), or every prefix of a file in one transaction (--file)'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from help" -f -a "del" -d 'Remove a prefix (a config prefix stays removed until `prefix add`), or every prefix of a file in one transaction (--file)'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every registered prefix and where it came from'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from help" -f -a "show" -d 'One registered prefix'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from help" -f -a "lookup" -d 'What a packet to or from ADDRESS gets right now: prefix, preference, policy and the PoPs of its selection table'
complete -c edgectl -n "__fish_edgectl_using_subcommand prefix; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and not __fish_seen_subcommand_from list drain undrain help" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and not __fish_seen_subcommand_from list drain undrain help" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and not __fish_seen_subcommand_from list drain undrain help" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and not __fish_seen_subcommand_from list drain undrain help" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and not __fish_seen_subcommand_from list drain undrain help" -f -a "list" -d 'Every PoP: next hop, health (state, since, RTT, loss), encapsulation'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and not __fish_seen_subcommand_from list drain undrain help" -f -a "drain" -d 'Take a PoP out of every policy (counts as down)'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and not __fish_seen_subcommand_from list drain undrain help" -f -a "undrain" -d 'Put a drained PoP back (up again if its probe says so)'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and not __fish_seen_subcommand_from list drain undrain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from list" -l domain -d 'Only this domain\'s PoPs (`public` or a private domain\'s name)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from list" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from list" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from drain" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from drain" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from drain" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from drain" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from undrain" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from undrain" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from undrain" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from undrain" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every PoP: next hop, health (state, since, RTT, loss), encapsulation'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from help" -f -a "drain" -d 'Take a PoP out of every policy (counts as down)'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from help" -f -a "undrain" -d 'Put a drained PoP back (up again if its probe says so)'
complete -c edgectl -n "__fish_edgectl_using_subcommand pop; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and not __fish_seen_subcommand_from list show help" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and not __fish_seen_subcommand_from list show help" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and not __fish_seen_subcommand_from list show help" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and not __fish_seen_subcommand_from list show help" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and not __fish_seen_subcommand_from list show help" -f -a "list" -d 'Every policy: method, members (up or down), its selection tables'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and not __fish_seen_subcommand_from list show help" -f -a "show" -d 'A policy\'s members and its selection table summary'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and not __fish_seen_subcommand_from list show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from list" -l domain -d 'Only this domain\'s policies' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from list" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from list" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from show" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from show" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every policy: method, members (up or down), its selection tables'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "show" -d 'A policy\'s members and its selection table summary'
complete -c edgectl -n "__fish_edgectl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and not __fish_seen_subcommand_from check show diff reload help" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and not __fish_seen_subcommand_from check show diff reload help" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and not __fish_seen_subcommand_from check show diff reload help" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and not __fish_seen_subcommand_from check show diff reload help" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and not __fish_seen_subcommand_from check show diff reload help" -f -a "check" -d 'Validate a config file without touching anything; prints every problem with its line'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and not __fish_seen_subcommand_from check show diff reload help" -f -a "show" -d 'The config file as edged last applied it; with --effective, the config edged runs: the file with the live changes merged, as TOML'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and not __fish_seen_subcommand_from check show diff reload help" -f -a "diff" -d 'What the live changes add, replace and remove relative to the config file, as a diff of `[[prefixes]]` entries'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and not __fish_seen_subcommand_from check show diff reload help" -f -a "reload" -d 'Make edged re-read its config file and apply it as a diff (a bad config is rejected whole; the running state stays)'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and not __fish_seen_subcommand_from check show diff reload help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from check" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from check" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from check" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from show" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from show" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from show" -l effective -d 'The file with the live changes merged (the file\'s entry for a network a live change names replaced or left out)'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from diff" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from diff" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from diff" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from reload" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from reload" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from reload" -l force -d 'Apply the file even when it drops more of the file\'s prefixes than `[daemon] reload_max_shrink_percent` allows (a guard against a file caught half-written)'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from reload" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from reload" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate a config file without touching anything; prints every problem with its line'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'The config file as edged last applied it; with --effective, the config edged runs: the file with the live changes merged, as TOML'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "diff" -d 'What the live changes add, replace and remove relative to the config file, as a diff of `[[prefixes]]` entries'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "reload" -d 'Make edged re-read its config file and apply it as a diff (a bad config is rejected whole; the running state stays)'
complete -c edgectl -n "__fish_edgectl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and not __fish_seen_subcommand_from list clear help" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and not __fish_seen_subcommand_from list clear help" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and not __fish_seen_subcommand_from list clear help" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and not __fish_seen_subcommand_from list clear help" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and not __fish_seen_subcommand_from list clear help" -f -a "list" -d 'Every live change: network, kind (added, replaced, removed), when, by whom, and the live entry'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and not __fish_seen_subcommand_from list clear help" -f -a "clear" -d 'Drop live changes from the overlay (destructive: the live entries are lost): each network goes back to what the config file says, its entry or nothing. One change, all or nothing'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and not __fish_seen_subcommand_from list clear help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from list" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from list" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from clear" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from clear" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from clear" -l all -d 'Drop every live change'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from clear" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from clear" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every live change: network, kind (added, replaced, removed), when, by whom, and the live entry'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from help" -f -a "clear" -d 'Drop live changes from the overlay (destructive: the live entries are lost): each network goes back to what the config file says, its entry or nothing. One change, all or nothing'
complete -c edgectl -n "__fish_edgectl_using_subcommand live; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and not __fish_seen_subcommand_from latency customers help" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and not __fish_seen_subcommand_from latency customers help" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and not __fish_seen_subcommand_from latency customers help" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and not __fish_seen_subcommand_from latency customers help" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and not __fish_seen_subcommand_from latency customers help" -f -a "latency" -d 'RTT percentiles per PoP from the health probes'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and not __fish_seen_subcommand_from latency customers help" -f -a "customers" -d 'Customer round-trip times (edge ↔ customer host, measured passively from forwarded TCP): samples, min, p50, p90, p99, the objective and the share above it, per prefix, registration or region'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and not __fish_seen_subcommand_from latency customers help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from latency" -l window -d 'Seconds of history (at most 3600)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from latency" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from latency" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from latency" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from latency" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from customers" -l by -d 'How rows are grouped' -r -f -a "prefix\t''
registration\t''
region\t''"
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from customers" -l since -d 'How far back: a duration (90s, 15m, 2h, 1d) or an RFC 3339 time (cut to what `[latency] retain_minutes` keeps)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from customers" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from customers" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from customers" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from customers" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "latency" -d 'RTT percentiles per PoP from the health probes'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "customers" -d 'Customer round-trip times (edge ↔ customer host, measured passively from forwarded TCP): samples, min, p50, p90, p99, the objective and the share above it, per prefix, registration or region'
complete -c edgectl -n "__fish_edgectl_using_subcommand report; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand events" -l limit -d 'How many of the most recent events' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand events" -l interval -d 'Seconds between two looks at edged\'s events with --follow' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand events" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand events" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand events" -s f -l follow -d 'Then keep printing new events as they happen (until interrupted); with --json, one event per line'
complete -c edgectl -n "__fish_edgectl_using_subcommand events" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand events" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and not __fish_seen_subcommand_from show anomalies help" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and not __fish_seen_subcommand_from show anomalies help" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and not __fish_seen_subcommand_from show anomalies help" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and not __fish_seen_subcommand_from show anomalies help" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and not __fish_seen_subcommand_from show anomalies help" -f -a "show" -d 'Every path the monitored peers announce for PREFIX and its more-specifics: peer, RIB, AS path, origin, communities, since when, and the anomaly it shows'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and not __fish_seen_subcommand_from show anomalies help" -f -a "anomalies" -d 'Route anomalies: the active ones, then the cleared ones edged keeps'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and not __fish_seen_subcommand_from show anomalies help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from show" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from show" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from anomalies" -l since -d 'Only those raised or cleared since: a duration back from now (90s, 15m, 2h, 1d) or an RFC 3339 time' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from anomalies" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from anomalies" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from anomalies" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from anomalies" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from help" -f -a "show" -d 'Every path the monitored peers announce for PREFIX and its more-specifics: peer, RIB, AS path, origin, communities, since when, and the anomaly it shows'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from help" -f -a "anomalies" -d 'Route anomalies: the active ones, then the cleared ones edged keeps'
complete -c edgectl -n "__fish_edgectl_using_subcommand routes; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand teardown" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand teardown" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand teardown" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand teardown" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand completions" -l socket -d 'edged\'s control socket (`daemon.socket_path` in edged\'s config)' -r -F
complete -c edgectl -n "__fish_edgectl_using_subcommand completions" -l timeout -d 'How long to wait for edged\'s reply (seconds)' -r
complete -c edgectl -n "__fish_edgectl_using_subcommand completions" -l json -d 'Print machine-readable JSON instead of text'
complete -c edgectl -n "__fish_edgectl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "status" -d 'The daemon: version, uptime, config generation, ports, map fill'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "stats" -d 'Packet and byte counters per action, reason, prefix, PoP and port, with rates when watching'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "prefix" -d 'Registered prefixes'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "pop" -d 'PoPs (next hops)'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "policy" -d 'Policies and their selection tables'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "config" -d 'Config file operations'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "live" -d 'Live changes: the prefixes added, replaced or removed with edgectl on top of the config file'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "report" -d 'Reports'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "events" -d 'Recent events: protection violations, PoP state changes, fallbacks, interface changes, operators\' changes, route anomalies and holds, customer latency degradations and recoveries'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "routes" -d 'Route analytics from the BGP speakers\' BMP feeds: who announces the registered prefixes, hijacks, leaks, visibility, AS hops'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "teardown" -d 'Remove the forwarder: detach from every port, remove pins and state; edged exits'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and not __fish_seen_subcommand_from status stats prefix pop policy config live report events routes teardown completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from stats" -f -a "prefix" -d 'Only one registered prefix'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from prefix" -f -a "add" -d 'Register a prefix live (kept across restarts; replaces the config\'s entry for the same prefix), or every prefix of a file in one transaction (--file)'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from prefix" -f -a "del" -d 'Remove a prefix (a config prefix stays removed until `prefix add`), or every prefix of a file in one transaction (--file)'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from prefix" -f -a "list" -d 'Every registered prefix and where it came from'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from prefix" -f -a "show" -d 'One registered prefix'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from prefix" -f -a "lookup" -d 'What a packet to or from ADDRESS gets right now: prefix, preference, policy and the PoPs of its selection table'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from pop" -f -a "list" -d 'Every PoP: next hop, health (state, since, RTT, loss), encapsulation'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from pop" -f -a "drain" -d 'Take a PoP out of every policy (counts as down)'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from pop" -f -a "undrain" -d 'Put a drained PoP back (up again if its probe says so)'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "list" -d 'Every policy: method, members (up or down), its selection tables'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "show" -d 'A policy\'s members and its selection table summary'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate a config file without touching anything; prints every problem with its line'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'The config file as edged last applied it; with --effective, the config edged runs: the file with the live changes merged, as TOML'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "diff" -d 'What the live changes add, replace and remove relative to the config file, as a diff of `[[prefixes]]` entries'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "reload" -d 'Make edged re-read its config file and apply it as a diff (a bad config is rejected whole; the running state stays)'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from live" -f -a "list" -d 'Every live change: network, kind (added, replaced, removed), when, by whom, and the live entry'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from live" -f -a "clear" -d 'Drop live changes from the overlay (destructive: the live entries are lost): each network goes back to what the config file says, its entry or nothing. One change, all or nothing'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "latency" -d 'RTT percentiles per PoP from the health probes'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from report" -f -a "customers" -d 'Customer round-trip times (edge ↔ customer host, measured passively from forwarded TCP): samples, min, p50, p90, p99, the objective and the share above it, per prefix, registration or region'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from routes" -f -a "show" -d 'Every path the monitored peers announce for PREFIX and its more-specifics: peer, RIB, AS path, origin, communities, since when, and the anomaly it shows'
complete -c edgectl -n "__fish_edgectl_using_subcommand help; and __fish_seen_subcommand_from routes" -f -a "anomalies" -d 'Route anomalies: the active ones, then the cleared ones edged keeps'
