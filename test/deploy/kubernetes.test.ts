import { readFileSync } from 'node:fs';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

// deploy/kubernetes.yaml checked against the Kubernetes API schemas (kubernetes-models, from the OpenAPI spec);
// test/e2e/examples.test.ts checks that the chat demo answers its probes and that the grace period covers the delays.
const documents = parseAllDocuments(
  readFileSync(new URL('../../deploy/kubernetes.yaml', import.meta.url), 'utf8'),
).map((d) => d.toJS() as Record<string, unknown>);

type Probe = { httpGet?: { path?: string; port?: number | string } };

describe('deploy/kubernetes.yaml', () => {
  it('is a Deployment and a Service that validate against the Kubernetes schemas', () => {
    expect(documents.map((d) => d.kind)).toEqual(['Deployment', 'Service']);
    expect(() => new Deployment(documents[0] as never).validate()).not.toThrow();
    expect(() => new Service(documents[1] as never).validate()).not.toThrow();
  });

  it('the validator catches a broken manifest (the control case)', () => {
    const broken = structuredClone(documents[0]) as never as Deployment;
    broken.spec!.template.spec!.containers[0]!.lifecycle!.preStop!.sleep = {} as never; // `seconds` missing
    expect(() => new Deployment(broken).validate()).toThrow(/preStop\/sleep must have required property/);
    const wrongType = structuredClone(documents[0]) as never as Deployment;
    wrongType.spec!.template.spec!.terminationGracePeriodSeconds = '30' as never;
    expect(() => new Deployment(wrongType).validate()).toThrow(
      /terminationGracePeriodSeconds must be integer/,
    );
  });

  it('has preStop, a grace period, probes on a named port, and a Service that selects the pods', () => {
    const deployment = new Deployment(documents[0] as never);
    const service = new Service(documents[1] as never);
    const pod = deployment.spec!.template;
    const container = pod.spec!.containers[0]!;
    expect(container.lifecycle?.preStop?.sleep?.seconds).toBeGreaterThan(0);
    expect(pod.spec!.terminationGracePeriodSeconds).toBeGreaterThan(
      container.lifecycle!.preStop!.sleep!.seconds,
    );
    const portNames = (container.ports ?? []).map((p) => p.name);
    const probes: Array<[string, Probe | undefined]> = [
      ['/readyz', container.readinessProbe],
      ['/livez', container.livenessProbe],
    ];
    for (const [path, probe] of probes) {
      expect(probe?.httpGet?.path).toBe(path);
      expect(portNames).toContain(probe?.httpGet?.port);
    }
    expect(deployment.spec!.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    // The Service's selector picks the pods of the Deployment, and it targets the container's named port.
    expect(deployment.spec!.selector.matchLabels).toEqual(service.spec!.selector);
    for (const [k, v] of Object.entries(service.spec!.selector!)) expect(pod.metadata!.labels![k]).toBe(v);
    expect(portNames).toContain(service.spec!.ports![0]!.targetPort);
  });
});
