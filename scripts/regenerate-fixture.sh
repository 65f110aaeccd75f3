#!/usr/bin/env bash
# Re-creates fleet-fixture/clusters/alpha/break-glass-kubeconfig.enc.yaml with the real sops,
# so `status` works on the fixture without a cluster. The token is the canary of
# tests/support/canary.rs (TOKEN: any output containing KDCcanary is a leak), and
# the recipient is the fixture's TEST-ONLY key. Plaintext only travels through a pipe.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sops=${KUBE_DC_SOPS:-$(command -v sops || echo "$HOME/.cache/kube-dc/tools/bin/sops")}
ca=$(printf -- '-----BEGIN CERTIFICATE-----\nZml4dHVyZSBDQSwgbm90IGEgcmVhbCBjZXJ0aWZpY2F0ZQ==\n-----END CERTIFICATE-----\n' | base64 -w0)
cd "$root/fleet-fixture"
cat <<YAML | "$sops" encrypt --filename-override clusters/alpha/break-glass-kubeconfig.enc.yaml >clusters/alpha/break-glass-kubeconfig.enc.yaml.new
apiVersion: v1
kind: Config
clusters:
  - name: alpha
    cluster:
      server: https://kube-api.alpha.example.test:6443
      certificate-authority-data: $ca
users:
  - name: break-glass@alpha
    user:
      token: eyJhbGciOiJSUzI1NiIsImtpZCI6ImNhbmFyeSJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.KDCcanary-fixture-token-not-a-credential
contexts:
  - name: break-glass/alpha
    context:
      cluster: alpha
      user: break-glass@alpha
      namespace: kube-system
current-context: break-glass/alpha
YAML
mv clusters/alpha/break-glass-kubeconfig.enc.yaml.new clusters/alpha/break-glass-kubeconfig.enc.yaml
