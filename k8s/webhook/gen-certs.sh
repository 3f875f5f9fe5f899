#!/usr/bin/env bash
# The webhook's serving certificate without cert-manager: a throwaway CA and
# a server certificate for the webhook Service, made with openssl, stored as
# the Secret jwtgate-webhook-tls, and the CA written into the
# MutatingWebhookConfiguration's caBundle (the API server trusts only that).
#
#   bash k8s/webhook/gen-certs.sh            # namespace jwtgate-system
#   NAMESPACE=other DAYS=365 bash k8s/webhook/gen-certs.sh
#
# Run it after `kubectl apply -k k8s/webhook` (it patches the applied
# configuration); re-running rotates everything. The CA key is deleted at
# the end: renewal means running the script again before DAYS run out
# (the webhook re-reads the mounted files within a minute, no restart).
# Remove the cert-manager.io/inject-ca-from annotation if cert-manager is
# installed but not used for this, or its cainjector may overwrite caBundle.
set -euo pipefail

NAMESPACE=${NAMESPACE:-jwtgate-system}
SERVICE=${SERVICE:-jwtgate-webhook}
SECRET=${SECRET:-jwtgate-webhook-tls}
WEBHOOK=${WEBHOOK:-jwtgate-sidecar-injector}
DAYS=${DAYS:-730}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"

cat > server.cnf <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = ${SERVICE}.${NAMESPACE}.svc
[ext]
subjectAltName = DNS:${SERVICE}.${NAMESPACE}.svc, DNS:${SERVICE}.${NAMESPACE}.svc.cluster.local
extendedKeyUsage = serverAuth
keyUsage = critical, digitalSignature, keyEncipherment
basicConstraints = critical, CA:FALSE
CNF

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$DAYS" \
  -subj "/CN=jwtgate-webhook-ca" -keyout ca.key -out ca.crt 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -config server.cnf -keyout tls.key -out tls.csr 2>/dev/null
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$DAYS" \
  -extfile server.cnf -extensions ext -out tls.crt 2>/dev/null

kubectl -n "$NAMESPACE" create secret tls "$SECRET" --cert=tls.crt --key=tls.key \
  --dry-run=client -o yaml | kubectl apply -f -
ca_bundle=$(base64 < ca.crt | tr -d '\n')
kubectl patch mutatingwebhookconfiguration "$WEBHOOK" --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"${ca_bundle}\"}]"
echo "gen-certs: Secret ${NAMESPACE}/${SECRET} and the caBundle of ${WEBHOOK} updated (valid ${DAYS} days)"
