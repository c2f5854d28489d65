// README: checks the Node examples of docs/interop.md against a running Ember.
//   mkdir /tmp/interop-node && cd /tmp/interop-node && npm init -y && npm install fhir-kit-client @medplum/core
//   cd /tmp/interop-node && node --input-type=module - [http://127.0.0.1:8089/fhir] < /work/main/scripts/interop/check_node.mjs
// (standard input, so that the packages resolve from the install folder). Start Ember
// with EMBER_CORS_ORIGINS=http://localhost:3000 for the CORS step. Prints one line per
// step: the step, then what happened. Writes only new resources.
import { randomUUID } from 'node:crypto';
import { Client } from 'fhir-kit-client';
import { MedplumClient, OperationOutcomeError } from '@medplum/core';

const BASE = (process.argv[2] ?? 'http://127.0.0.1:8089/fhir').replace(/\/$/, '');
const RUN = randomUUID().slice(0, 8); // keeps the searches of one run apart
const SYS = `urn:interop:${RUN}`;

async function show(step, fn) {
  try {
    console.log(`[ok]  ${step}: ${JSON.stringify(await fn())}`);
  } catch (e) {
    const detail = e.response // fhir-kit-client
      ? `${e.response.status} ${JSON.stringify(e.response.data)}`
      : e instanceof OperationOutcomeError // medplum
        ? JSON.stringify(e.outcome)
        : `${e.name}: ${e.message}`;
    console.log(`[err] ${step}: ${detail.slice(0, 300)}`);
  }
}

const fhirpathPatch = {
  resourceType: 'Parameters',
  parameter: [{ name: 'operation', part: [
    { name: 'type', valueCode: 'replace' },
    { name: 'path', valueString: 'Patient.active' },
    { name: 'value', valueBoolean: true },
  ] }],
};
const years = ['1980', '1985', '1990', '2000'];

// ------------------------------------------------------------ fhir-kit-client
{
  console.log('== fhir-kit-client', BASE);
  const client = new Client({ baseUrl: BASE });
  const family = `Fk${RUN}`;
  const p = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family }], birthDate: '1995-02-03' } });
  await show('create', () => p.id);
  await show('read', async () => (await client.read({ resourceType: 'Patient', id: p.id })).meta.versionId);
  await show('update', async () => (await client.update({ resourceType: 'Patient', id: p.id, body: { ...p, active: true } })).meta.versionId);
  for (const birthDate of years) {
    await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family }], birthDate } });
  }
  const body = { resourceType: 'Patient', identifier: [{ system: SYS, value: 'fk' }] };
  for (const i of [1, 2]) {
    await show(`conditional create #${i}`, async () => {
      const r = await client.create({ resourceType: 'Patient', body, options: { headers: { 'If-None-Exist': `identifier=${SYS}|fk` } } });
      return [Client.httpFor(r).response.status, r.id];
    });
  }
  await show('birthdate=gt1990', async () => {
    const b = await client.search({ resourceType: 'Patient', searchParams: { family, birthdate: 'gt1990' } });
    return b.entry.map((e) => e.resource.birthDate).sort();
  });
  await show('paging (pages, resources)', async () => {
    let b = await client.search({ resourceType: 'Patient', searchParams: { family, _count: 2 } });
    let pages = 0, n = 0;
    for (; b; b = await client.nextPage({ bundle: b })) { pages += 1; n += b.entry?.length ?? 0; }
    return [pages, n];
  });
  await client.create({ resourceType: 'Observation', body: { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${p.id}` } } });
  await show('_include', async () => {
    const b = await client.search({ resourceType: 'Observation', searchParams: { subject: `Patient/${p.id}`, _include: 'Observation:subject' } });
    return b.entry.map((e) => e.search.mode).sort();
  });
  await show('transaction (POST [base]/)', async () => {
    const b = await client.transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: `urn:uuid:${randomUUID()}`, resource: { resourceType: 'Patient', name: [{ family }] }, request: { method: 'POST', url: 'Patient' } },
      { request: { method: 'GET', url: `Patient?family=${family}&_summary=count` } },
    ] } });
    return b.entry.map((e) => [e.response.status, e.resource?.total]);
  });
  await show('JSON Patch', async () => (await client.patch({ resourceType: 'Patient', id: p.id, jsonPatch: [{ op: 'replace', path: '/active', value: false }] })).active);
  await show('FHIRPath Patch', async () => (await client.request(`Patient/${p.id}`, { method: 'PATCH', body: fhirpathPatch, options: { headers: { 'Content-Type': 'application/fhir+json' } } })).active);
  await show('FHIRPath Patch without Content-Type', () => client.request(`Patient/${p.id}`, { method: 'PATCH', body: fhirpathPatch }));
  await show('$validate (POST)', async () => (await client.operation({ resourceType: 'Patient', name: '$validate', input: { resourceType: 'Patient', gender: 'nope' } })).issue.map((i) => i.severity));
  await show('$everything (GET)', async () => (await client.operation({ resourceType: 'Patient', id: p.id, name: 'everything', method: 'GET' })).entry.map((e) => e.resource.resourceType).sort());
  await show('404', () => client.read({ resourceType: 'Patient', id: 'no-such-id' }));
  await show('400', () => client.search({ resourceType: 'Patient', searchParams: { birthdate: 'not-a-date' } }));
}

// ------------------------------------------------------------ @medplum/core
{
  console.log('== @medplum/core', BASE);
  const url = new URL(BASE);
  // What a browser asks before each MedplumClient request (it adds X-Medplum: extended
  // and fetches with credentials: 'include').
  await show('CORS preflight for X-Medplum', async () => {
    const r = await fetch(`${BASE}/Patient`, { method: 'OPTIONS', headers: {
      Origin: 'http://localhost:3000', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-medplum' } });
    return [r.status, r.headers.get('access-control-allow-headers'), r.headers.get('access-control-allow-credentials')];
  });
  const defaults = new MedplumClient({ baseUrl: `${url.origin}/` });
  await show('default fhirUrlPath (fhir/R4)', () => defaults.readResource('Patient', 'x'));
  const medplum = new MedplumClient({ baseUrl: `${url.origin}/`, fhirUrlPath: url.pathname.replace(/^\//, '') });
  const family = `Mp${RUN}`;
  const p = await medplum.createResource({ resourceType: 'Patient', name: [{ family }], birthDate: '1995-02-03' });
  await show('create', () => p.id);
  await show('read', async () => (await medplum.readResource('Patient', p.id)).meta.versionId);
  await show('update', async () => (await medplum.updateResource({ ...p, active: true })).meta.versionId);
  for (const birthDate of years) {
    await medplum.createResource({ resourceType: 'Patient', name: [{ family }], birthDate });
  }
  const body = { resourceType: 'Patient', identifier: [{ system: SYS, value: 'mp' }] };
  for (const i of [1, 2]) {
    await show(`createResourceIfNoneExist #${i}`, async () => (await medplum.createResourceIfNoneExist(body, `identifier=${SYS}|mp`)).id);
  }
  await show('upsertResource (conditional update)', async () => (await medplum.upsertResource({ ...body, active: true }, { identifier: `${SYS}|mp` })).meta.versionId);
  await show('birthdate=gt1990', async () => (await medplum.searchResources('Patient', { family, birthdate: 'gt1990' })).map((r) => r.birthDate).sort());
  await show('searchResourcePages (_count=2)', async () => {
    const sizes = [];
    for await (const page of medplum.searchResourcePages('Patient', { family, _count: 2 })) sizes.push(page.length);
    return sizes;
  });
  await medplum.createResource({ resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${p.id}` } });
  await show('_include', async () => (await medplum.search('Observation', { subject: `Patient/${p.id}`, _include: 'Observation:subject' })).entry.map((e) => e.search.mode).sort());
  await show('executeBatch (transaction, FHIRPath Patch entry)', async () => {
    const b = await medplum.executeBatch({ resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: fhirpathPatch, request: { method: 'PATCH', url: `Patient/${p.id}` } },
      { fullUrl: `urn:uuid:${randomUUID()}`, resource: { resourceType: 'Patient', name: [{ family }] }, request: { method: 'POST', url: 'Patient' } },
    ] });
    return b.entry.map((e) => e.response.status);
  });
  await show('patchResource (JSON Patch)', async () => (await medplum.patchResource('Patient', p.id, [{ op: 'replace', path: '/active', value: false }])).active);
  await show('validateResource', async () => (await medplum.validateResource({ resourceType: 'Patient', gender: 'nope' })).issue.map((i) => i.severity));
  await show('readPatientEverything', async () => (await medplum.readPatientEverything(p.id)).entry.map((e) => e.resource.resourceType).sort());
  await show('readPatientSummary ($summary)', () => medplum.readPatientSummary(p.id));
  await show('valueSetExpand ($expand)', () => medplum.valueSetExpand({ url: 'http://hl7.org/fhir/ValueSet/administrative-gender' }));
  await show('404', () => medplum.readResource('Patient', 'no-such-id'));
  await show('400', () => medplum.search('Patient', 'birthdate=not-a-date'));
}
