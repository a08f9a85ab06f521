#!/bin/bash
# Installs the MiniMCP agent on an Amazon Linux 2023 node. Run as root from
# the unpacked bundle in /opt/minimcp, after the user data wrote the
# non-secret settings to /etc/minimcp/agent.env. Safe to run again.
set -euo pipefail

BUNDLE=/opt/minimcp
# shellcheck disable=SC1091
source /etc/minimcp/agent.env

# Node 22 from the AL2023 repositories (namespaced: node-22, npm-22, npx-22);
# the CloudWatch agent ships the agent's log file and scrapes its metrics.
dnf install -y nodejs22 nodejs22-npm amazon-cloudwatch-agent logrotate

# One stable path for the unit and for children that run `node` or `npx`.
install -d -m 0755 "$BUNDLE/bin"
for tool in node npm npx; do
  target="$(command -v "$tool-22" || command -v "$tool")"
  ln -sfn "$target" "$BUNDLE/bin/$tool"
done

if ! id minimcp >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/minimcp --no-create-home --shell /sbin/nologin minimcp
fi

# The agents connect to RDS directly (sslmode=require verifies the server):
# Node needs the RDS certificate authorities.
curl -fsSL --retry 5 --retry-delay 2 \
  https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem -o /etc/minimcp/rds-ca.pem.tmp
mv /etc/minimcp/rds-ca.pem.tmp /etc/minimcp/rds-ca.pem
chmod 0644 /etc/minimcp/rds-ca.pem

install -m 0644 "$BUNDLE/minimcp-agent.service" /etc/systemd/system/minimcp-agent.service

# Each MCP server as an OS user of its own (cdk context agentChildUids): the
# agent runs as root with a narrow capability set (a drop-in), and those users
# are kept from the instance metadata service (an nftables table, loaded at boot).
DROPIN=/etc/systemd/system/minimcp-agent.service.d
if [[ -n "${MINIMCP_CHILD_UIDS:-}" ]]; then
  dnf install -y nftables
  install -d -m 0755 "$DROPIN" /etc/nftables
  install -m 0644 "$BUNDLE/child-users.conf" "$DROPIN/child-users.conf"
  sed "s|__CHILD_UIDS__|${MINIMCP_CHILD_UIDS}|" "$BUNDLE/child-users.nft" \
    > /etc/nftables/minimcp-children.nft
  nft -f /etc/nftables/minimcp-children.nft
  grep -qs 'minimcp-children.nft' /etc/sysconfig/nftables.conf ||
    echo 'include "/etc/nftables/minimcp-children.nft"' >> /etc/sysconfig/nftables.conf
  systemctl enable nftables
else
  rm -f "$DROPIN/child-users.conf"
  nft delete table inet minimcp_children 2>/dev/null || true
fi
install -m 0644 "$BUNDLE/logrotate.conf" /etc/logrotate.d/minimcp-agent

# The CloudWatch agent ships the agent's log file, and scrapes its Prometheus
# endpoint (MINIMCP_METRICS_LISTEN) into embedded-metric-format logs: the
# metrics the dashboard and the alarms read.
sed "s|__METRICS_TARGET__|${MINIMCP_METRICS_LISTEN}|" "$BUNDLE/prometheus.yaml" \
  > /opt/aws/amazon-cloudwatch-agent/etc/minimcp-prometheus.yaml
sed -e "s|__LOG_GROUP__|${MINIMCP_LOG_GROUP}|" \
  -e "s|__METRICS_LOG_GROUP__|${MINIMCP_METRICS_LOG_GROUP}|" \
  -e "s|__METRICS_NAMESPACE__|${MINIMCP_METRICS_NAMESPACE}|" \
  "$BUNDLE/cloudwatch-agent.json" > /opt/aws/amazon-cloudwatch-agent/etc/minimcp-agent.json
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/minimcp-agent.json

systemctl daemon-reload
systemctl enable minimcp-agent
systemctl restart minimcp-agent

# Healthy means: the service runs and its gRPC port listens. The exit code is
# what the Auto Scaling group's CloudFormation signal reports.
for _ in $(seq 1 60); do
  if systemctl is-active --quiet minimcp-agent && ss -ltn "sport = :${MINIMCP_GRPC_PORT}" | grep -q LISTEN; then
    echo "minimcp-agent is up on port ${MINIMCP_GRPC_PORT}"
    exit 0
  fi
  sleep 2
done
echo "minimcp-agent did not come up; last log lines:" >&2
tail -n 50 /var/log/minimcp/agent.log >&2 || true
exit 1
