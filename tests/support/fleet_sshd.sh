#!/usr/bin/env bash
# One sshd per test host on a loopback address, for the Molecule scenario extensions/molecule/fleet.
#
#   fleet_sshd.sh start DIR PORT NAME=ADDRESS...   start (or keep) an sshd for each NAME on ADDRESS:PORT
#   fleet_sshd.sh stop DIR                         stop every sshd started under DIR, and its sessions
#   fleet_sshd.sh status DIR                       print "NAME running pid=N" or "NAME not-running"
#
# Everything lives under DIR: the client key (DIR/id_ed25519, the only key the sshds accept, for root),
# and for each host DIR/NAME/ with its host key, sshd_config, pid file and log. Nothing is written to
# /root/.ssh or /etc/ssh. The addresses are loopback addresses (127.0.0.0/8), so no traffic leaves
# the machine. sshd needs its privilege separation directory /run/sshd: created when missing (and
# then removed again by "stop", if empty).
set -euo pipefail

SSHD=${SSHD:-/usr/sbin/sshd}

die() {
  echo "fleet_sshd: $*" >&2
  exit 1
}

# The pid of the sshd listener of DIR/NAME when it runs (checked against its command line), else nothing.
listener_pid() {
  local host_dir=$1 pid
  [[ -f $host_dir/sshd.pid ]] || return 0
  pid=$(<"$host_dir/sshd.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  alive "$pid" || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-f $host_dir/sshd_config"; then
    echo "$pid"
  fi
}

# Whether process $1 still runs (a zombie does not: where PID 1 does not reap, it stays in /proc).
alive() {
  local line
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  line=${line##*) }
  [[ ${line:0:1} != Z ]]
}

# The descendants of process $1 (sshd's per-connection processes and their sessions), from /proc.
descendants_of() {
  local stat_file line rest pid ppid
  local -A children=()
  local -a queue=("$1")
  for stat_file in /proc/[0-9]*/stat; do
    # Field 4 of /proc/PID/stat is the parent pid; field 2 (the name) may hold blanks, so cut after ')'.
    read -r line 2>/dev/null <"$stat_file" || continue
    rest=${line##*) }
    read -r _ ppid _ <<<"$rest"
    pid=${stat_file#/proc/}
    children[$ppid]+="${pid%/stat} "
  done
  while [[ ${#queue[@]} -gt 0 ]]; do
    for pid in ${children[${queue[0]}]:-}; do
      echo "$pid"
      queue+=("$pid")
    done
    queue=("${queue[@]:1}")
  done
}

# Whether ADDRESS:PORT accepts TCP connections.
listening() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

start() {
  local dir=$1 port=$2 spec name address host_dir pid i
  shift 2
  [[ $# -gt 0 ]] || die "start: no NAME=ADDRESS given"
  [[ -x $SSHD ]] || die "$SSHD not found: install the openssh-server package (apt-get install -y openssh-server)"
  command -v ssh-keygen >/dev/null || die "ssh-keygen not found: install openssh-client"
  [[ $dir == /* ]] || die "DIR must be an absolute path, got $dir"
  mkdir -p "$dir"
  chmod 0700 "$dir"
  if [[ ! -f $dir/id_ed25519 ]]; then
    ssh-keygen -q -t ed25519 -N '' -C fleet-molecule -f "$dir/id_ed25519"
  fi
  if [[ ! -d /run/sshd ]]; then
    mkdir -m 0755 /run/sshd
    touch "$dir/run-sshd.created"
  fi
  for spec in "$@"; do
    name=${spec%%=*}
    address=${spec#*=}
    [[ $name =~ ^[A-Za-z0-9_.-]+$ && $address =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] \
      || die "start: expected NAME=127.x.y.z, got $spec"
    host_dir=$dir/$name
    mkdir -p "$host_dir"
    chmod 0700 "$host_dir"
    pid=$(listener_pid "$host_dir")
    if [[ -n $pid ]]; then
      echo "$name running pid=$pid"
      continue
    fi
    if [[ ! -f $host_dir/ssh_host_ed25519_key ]]; then
      ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$host_dir/ssh_host_ed25519_key"
    fi
    cat >"$host_dir/sshd_config" <<EOF
# sshd of the test host $name (extensions/molecule/fleet), written by tests/support/fleet_sshd.sh
ListenAddress $address:$port
HostKey $host_dir/ssh_host_ed25519_key
PidFile $host_dir/sshd.pid
AuthorizedKeysFile $dir/id_ed25519.pub
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
PrintMotd no
UseDNS no
MaxStartups 50:30:100
LogLevel INFO
Subsystem sftp internal-sftp
EOF
    "$SSHD" -t -f "$host_dir/sshd_config" || die "sshd refuses $host_dir/sshd_config"
    rm -f "$host_dir/sshd.pid"
    # sshd detaches, then listens, then writes its pid file.
    "$SSHD" -f "$host_dir/sshd_config" -E "$host_dir/sshd.log"
    for ((i = 0; i < 100; i++)); do
      pid=$(listener_pid "$host_dir")
      if [[ -n $pid ]] && listening "$address" "$port"; then
        break
      fi
      sleep 0.1
    done
    if [[ -z $pid ]] || ! listening "$address" "$port"; then
      die "the sshd of $name did not come up on $address:$port; its log: $(tail -n 5 "$host_dir/sshd.log" 2>/dev/null)"
    fi
    echo "$name started pid=$pid on $address:$port"
  done
}

stop() {
  local dir=$1 host_dir name pid child pids i
  [[ -d $dir ]] || return 0
  for host_dir in "$dir"/*/; do
    host_dir=${host_dir%/}
    [[ -f $host_dir/sshd_config ]] || continue
    name=${host_dir##*/}
    pid=$(listener_pid "$host_dir")
    if [[ -z $pid ]]; then
      rm -f "$host_dir/sshd.pid"
      echo "$name not-running"
      continue
    fi
    # The listener first (no new sessions), then the sessions it had started (their ssh clients then exit).
    pids=$(descendants_of "$pid")
    kill "$pid" 2>/dev/null || true
    for child in $pids; do
      kill "$child" 2>/dev/null || true
    done
    for ((i = 0; i < 50; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$host_dir/sshd.pid"
    echo "$name stopped pid=$pid"
  done
  if [[ -f $dir/run-sshd.created ]]; then
    rmdir /run/sshd 2>/dev/null || true
    rm -f "$dir/run-sshd.created"
  fi
}

status() {
  local dir=$1 host_dir pid
  [[ -d $dir ]] || return 0
  for host_dir in "$dir"/*/; do
    host_dir=${host_dir%/}
    [[ -f $host_dir/sshd_config ]] || continue
    pid=$(listener_pid "$host_dir")
    if [[ -n $pid ]]; then
      echo "${host_dir##*/} running pid=$pid"
    else
      echo "${host_dir##*/} not-running"
    fi
  done
}

case ${1:-} in
  start)
    [[ $# -ge 4 ]] || die "usage: $0 start DIR PORT NAME=ADDRESS..."
    start "${@:2}"
    ;;
  stop)
    [[ $# -eq 2 ]] || die "usage: $0 stop DIR"
    stop "$2"
    ;;
  status)
    [[ $# -eq 2 ]] || die "usage: $0 status DIR"
    status "$2"
    ;;
  *)
    die "usage: $0 start DIR PORT NAME=ADDRESS... | stop DIR | status DIR"
    ;;
esac
