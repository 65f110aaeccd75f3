#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called via trap and wait_for look unreachable
# Start a throwaway Kubernetes control plane (etcd + kube-apiserver +
# kube-controller-manager) on loopback, with all state in DIR.
#
# Usage: scripts/control-plane/up.sh DIR [--owner-pid PID]
#
#   DIR            created; must be absent or empty.
#   --owner-pid    also start a watchdog that runs down.sh DIR as soon as PID is gone
#                  (guarantees cleanup when the caller is killed: Ctrl-C, SIGKILL, panic=abort).
#
# Binaries: $KUBE_DC_K8S_BIN, else the output of build.sh (fast when cached).
#
# Writes:
#   DIR/admin.kubeconfig    user kube-dc-admin, group system:masters
#   DIR/nobody.kubeconfig   user nobody, authenticated, no RBAC rights
#   DIR/env                 shell-sourceable: KUBE_APISERVER_URL, kubeconfig paths, PIDs, ...
#   DIR/pids                "name pid" per line (each process leads its own session)
#   DIR/logs/{etcd,kube-apiserver,kube-controller-manager,watchdog}.log
#   DIR/logs/audit.log      the apiserver's audit log (Metadata level: user, verb, userAgent)
#   DIR/pki/                ca.crt/key, apiserver, admin, controller-manager, nobody, sa.key/pub
# Stop with scripts/control-plane/down.sh DIR.
set -euo pipefail
# The whole script is one brace group, so bash reads it completely before running it:
# editing or updating this file (git pull) while it runs cannot change a running instance.
{

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
READY_TIMEOUT=${KUBE_DC_CP_READY_TIMEOUT:-90}

log() { printf 'up.sh: %s\n' "$*" >&2; }
usage() { printf 'usage: %s DIR [--owner-pid PID]\n' "$0" >&2; exit 2; }

dir="" owner_pid=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --owner-pid) [[ $# -ge 2 ]] || usage; owner_pid=$2; shift 2 ;;
    --owner-pid=*) owner_pid=${1#*=}; shift ;;
    -h|--help) usage ;;
    -*) printf 'up.sh: unknown option %s\n' "$1" >&2; usage ;;
    *) [[ -z "$dir" ]] || usage; dir=$1; shift ;;
  esac
done
[[ -n "$dir" ]] || usage
if [[ -n "$owner_pid" ]]; then
  [[ "$owner_pid" =~ ^[0-9]+$ ]] || { log "--owner-pid must be a number"; exit 2; }
  [[ -d /proc/$owner_pid ]] || { log "owner pid $owner_pid does not exist"; exit 2; }
fi

for tool in openssl python3 setsid base64 timeout; do
  command -v "$tool" >/dev/null 2>&1 || { log "error: '$tool' is needed"; exit 1; }
done

if [[ -e "$dir" ]]; then
  [[ -d "$dir" ]] || { log "error: $dir exists and is not a directory"; exit 1; }
  [[ -z "$(ls -A "$dir")" ]] || { log "error: $dir is not empty"; exit 1; }
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
case "$dir" in
  *"'"*|*[[:space:]]*) log "error: DIR must not contain quotes or whitespace: $dir"; exit 1 ;;
esac
mkdir -p "$dir/logs" "$dir/pki" "$dir/home"
printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n' >"$dir/audit-policy.yaml"
: >"$dir/pids"

# ---- binaries ----------------------------------------------------------------------
if [[ -n "${KUBE_DC_K8S_BIN:-}" ]]; then
  bin=$KUBE_DC_K8S_BIN
else
  bin=$("$here/build.sh" | tail -1) || { log "error: build.sh failed"; exit 1; }
fi
for b in etcd kube-apiserver kube-controller-manager kubectl; do
  [[ -x "$bin/$b" ]] || { log "error: $bin/$b not found or not executable (set KUBE_DC_K8S_BIN or run build.sh)"; exit 1; }
done

# ---- process bookkeeping and failure path ------------------------------------------------
started_ok=0
# Start a command in its own session (so terminal signals never reach it and down.sh can
# kill its whole process group), stdin/stdout/stderr detached from the caller.
spawn() { # name logfile cmd...
  local name=$1 logf=$2; shift 2
  setsid "$@" </dev/null >>"$logf" 2>&1 &
  local pid=$!
  printf '%s %s\n' "$name" "$pid" >>"$dir/pids"
  printf '%s' "$pid"
}

# A pid is "alive" if it exists and is not a zombie.
alive() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ "${st%% *}" != Z ]]
}

tail_logs() {
  local f
  for f in "$dir"/logs/*.log; do
    [[ -s "$f" && "$f" != */openssl.log ]] || continue
    printf '\n----- last 40 lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}

fail() {
  log "error: $*"
  tail_logs
  log "stopping what was started; state kept in $dir"
  started_ok=1 # the EXIT trap must not run this again
  "$here/down.sh" "$dir" --keep >&2 || true
  exit 1
}

on_exit() {
  local rc=$?
  if [[ $started_ok -eq 0 ]]; then
    if [[ $rc -eq 130 || $rc -eq 143 ]]; then
      log "interrupted before the control plane was ready; stopping it and removing $dir"
      "$here/down.sh" "$dir" >&2 || true
    else
      log "failed (exit $rc) before the control plane was ready; stopping it, state kept in $dir"
      tail_logs
      "$here/down.sh" "$dir" --keep >&2 || true
    fi
  fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

owner_alive() {
  [[ -z "$owner_pid" ]] && return 0
  local st
  st=$(cat "/proc/$owner_pid/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ "${st%% *}" != Z ]]
}

# ---- watchdog (first, so the owner dying at any moment is covered) ------------------
if [[ -n "$owner_pid" ]]; then
  # Identify the owner by pid + start time, so a recycled pid does not keep us alive.
  owner_stat=$(cat "/proc/$owner_pid/stat")
  owner_stat=${owner_stat##*) }
  read -r -a owner_fields <<<"$owner_stat"
  owner_start=${owner_fields[19]} # field 22 of /proc/PID/stat (starttime)
  # shellcheck disable=SC2016 # expanded by the inner bash
  spawn watchdog "$dir/logs/watchdog.log" bash -c '
    dir=$1 owner=$2 start=$3 down=$4
    same_owner() {
      local st
      st=$(cat "/proc/$owner/stat" 2>/dev/null) || return 1
      st=${st##*) }
      read -r -a f <<<"$st"
      [[ "${f[0]}" != Z && "${f[19]}" == "$start" ]]
    }
    echo "kube-dc-watchdog: watching pid $owner for $dir"
    while same_owner && [[ -d "$dir" ]]; do sleep 1; done
    if [[ -d "$dir" ]]; then
      echo "kube-dc-watchdog: owner $owner is gone; tearing down $dir"
      exec "$down" "$dir"
    fi' kube-dc-watchdog "$dir" "$owner_pid" "$owner_start" "$here/down.sh" >/dev/null
fi

# ---- PKI -------------------------------------------------------------------------------
pki=$dir/pki
ossl() {
  openssl "$@" 2>>"$dir/logs/openssl.log" >/dev/null ||
    fail "openssl $1 failed: $(tail -n 5 "$dir/logs/openssl.log")"
}

log "generating PKI in $pki"
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=kube-dc-test-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"

# cert NAME SUBJECT EXTKEYUSAGE [SAN]
cert() {
  local name=$1 subj=$2 eku=$3 san=${4:-}
  local ext="$pki/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } >"$ext"
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" -subj "$subj"
  ossl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$pki/$name.crt"
  rm -f "$pki/$name.csr" "$ext"
}
cert apiserver "/CN=kube-apiserver" serverAuth \
  "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1"
cert admin "/O=system:masters/CN=kube-dc-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert nobody "/CN=nobody" clientAuth
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
ossl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
chmod 600 "$pki"/*.key

# ---- ports -------------------------------------------------------------------------------
free_ports() { # N -> N distinct free loopback TCP ports, space separated
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# etcd answers GET /health with {"health":"true",...}; a foreign listener on the port does not.
etcd_healthy() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "GET /health HTTP/1.0\r\n\r\n" >&3 &&
    grep -q "\"health\":\"true\"" <&3' etcd-health "$1" 2>/dev/null
}

kubeconfig() { # FILE USER CERTNAME
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-dc-test
  cluster:
    server: $url
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$3.crt")
    client-key-data: $(base64 -w0 <"$pki/$3.key")
contexts:
- name: $2@kube-dc-test
  context:
    cluster: kube-dc-test
    user: $2
    namespace: default
current-context: $2@kube-dc-test
EOF
  chmod 600 "$1"
}

kctl() { HOME="$dir/home" KUBECONFIG="$dir/admin.kubeconfig" "$bin/kubectl" --request-timeout=5s "$@"; }

stop_attempt() { # stop the processes of a failed attempt (keeps the watchdog)
  local name pid
  while read -r name pid; do
    [[ "$name" == watchdog ]] && continue
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done <"$dir/pids"
  grep '^watchdog ' "$dir/pids" >"$dir/pids.tmp" || true
  mv "$dir/pids.tmp" "$dir/pids"
  sleep 0.5
}

# wait_for DESC TIMEOUT PID-TO-WATCH LOGNAME COMMAND...: poll until COMMAND succeeds.
# Returns 2 when the port was taken (so the caller can retry with new ports).
wait_for() {
  local desc=$1 timeout=$2 pid=$3 logname=$4; shift 4
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$pid"; then
      if grep -qi 'address already in use' "$dir/logs/$logname.log" 2>/dev/null; then
        return 2
      fi
      fail "$logname exited while waiting for $desc"
    fi
    if ! owner_alive; then
      log "owner pid $owner_pid is gone; stopping and removing $dir"
      started_ok=1
      "$here/down.sh" "$dir" >&2 || true
      exit 1
    fi
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $desc"
    sleep 0.2
  done
}

remaining() { local r=$((READY_TIMEOUT - (SECONDS - t0))); ((r > 5)) || r=5; printf '%s' "$r"; }
ready() { [[ "$(kctl get --raw /readyz 2>/dev/null)" == ok ]]; }

t0=$SECONDS
attempt=0
while :; do
  attempt=$((attempt + 1))
  ((attempt <= 3)) || fail "could not find free ports after 3 attempts"
  read -r etcd_client etcd_peer api_port < <(free_ports 3)
  url="https://127.0.0.1:$api_port"
  rm -rf "$dir/etcd"
  # Fresh logs per attempt, so a retry is decided on this attempt's errors only.
  for f in etcd kube-apiserver; do
    [[ -f "$dir/logs/$f.log" ]] && mv "$dir/logs/$f.log" "$dir/logs/$f.attempt$((attempt - 1)).log.old"
  done

  # ---- etcd ----
  log "starting etcd on 127.0.0.1:$etcd_client (attempt $attempt)"
  etcd_pid=$(spawn etcd "$dir/logs/etcd.log" "$bin/etcd" \
    --name=kube-dc-test \
    --data-dir="$dir/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_client" \
    --advertise-client-urls="http://127.0.0.1:$etcd_client" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-cluster="kube-dc-test=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync=true \
    --log-level=warn)
  rc=0; wait_for "etcd /health" 30 "$etcd_pid" etcd etcd_healthy "$etcd_client" || rc=$?
  if ((rc == 2)); then log "etcd port taken, retrying"; stop_attempt; continue; fi

  # ---- kube-apiserver ----
  log "starting kube-apiserver on $url"
  api_pid=$(spawn kube-apiserver "$dir/logs/kube-apiserver.log" "$bin/kube-apiserver" \
    --bind-address=127.0.0.1 \
    --secure-port="$api_port" \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --etcd-servers="http://127.0.0.1:$etcd_client" \
    --cert-dir="$dir/apiserver-certs" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --enable-admission-plugins=NodeRestriction \
    --audit-policy-file="$dir/audit-policy.yaml" \
    --audit-log-path="$dir/logs/audit.log" \
    --profiling=false)
  kubeconfig "$dir/admin.kubeconfig" kube-dc-admin admin
  kubeconfig "$dir/nobody.kubeconfig" nobody nobody
  kubeconfig "$dir/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  rc=0; wait_for "kube-apiserver /readyz" "$(remaining)" "$api_pid" kube-apiserver ready || rc=$?
  if ((rc == 2)); then log "apiserver port taken, retrying"; stop_attempt; continue; fi
  break
done
wait_for "the RBAC bootstrap (clusterrole cluster-admin)" "$(remaining)" "$api_pid" kube-apiserver \
  kctl get clusterrole cluster-admin
wait_for "namespace kube-system" "$(remaining)" "$api_pid" kube-apiserver kctl get namespace kube-system

# ---- kube-controller-manager ----
log "starting kube-controller-manager"
kcm_pid=$(spawn kube-controller-manager "$dir/logs/kube-controller-manager.log" "$bin/kube-controller-manager" \
  --kubeconfig="$dir/controller-manager.kubeconfig" \
  --controllers='*' \
  --leader-elect=false \
  --secure-port=0 \
  --root-ca-file="$pki/ca.crt" \
  --service-account-private-key-file="$pki/sa.key" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$pki/ca.crt" \
  --cluster-signing-key-file="$pki/ca.key" \
  --profiling=false)
# The service-account controller creating default/default shows the controllers run.
wait_for "the controller manager (serviceaccount default/default)" "$(remaining)" "$kcm_pid" kube-controller-manager \
  kctl -n default get serviceaccount default

watchdog_pid=$(awk '$1 == "watchdog" { print $2 }' "$dir/pids")
cat >"$dir/env" <<EOF
# Generated by kube-dc scripts/control-plane/up.sh; source it from a shell.
KUBE_DC_CP_DIR='$dir'
KUBE_APISERVER_URL='$url'
KUBE_DC_K8S_BIN='$bin'
ADMIN_KUBECONFIG='$dir/admin.kubeconfig'
NOBODY_KUBECONFIG='$dir/nobody.kubeconfig'
CA_CERT='$pki/ca.crt'
ETCD_URL='http://127.0.0.1:$etcd_client'
ETCD_PID='$etcd_pid'
KUBE_APISERVER_PID='$api_pid'
KUBE_CONTROLLER_MANAGER_PID='$kcm_pid'
WATCHDOG_PID='${watchdog_pid:-}'
EOF
started_ok=1
log "control plane ready at $url in $((SECONDS - t0))s (state in $dir; stop with $here/down.sh $dir)"
printf '%s\n' "$dir/env"
exit
}
