// What the DynamoDB API tests (dynamodb*.test.mjs) share: a conf with the item store's DynamoDB route at /, an AWS SDK
// client for it, and a check of a ValidationException.
import assert from 'node:assert/strict';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

export const STORE_CONF = `
threads: 2
listen:
  - { address: 127.0.0.1, port: 0 }
hosts:
  "*":
    routes:
      - path: /
        origin: { store: dynamodb }
`;

// An SDK client of the edgeproxy listening on port (no retries: every answer is the first one).
export function ddbClient(port) {
  return new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'local',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    maxAttempts: 1,
  });
}

// The promise rejects with a ValidationException whose message matches.
export async function rejectsValidation(promise, message) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, 'ValidationException');
    assert.match(e.message, message);
    return true;
  });
}
