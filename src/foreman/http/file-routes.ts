import { createHash, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CrowdComputeError, FileUploadQuerySchema, FileViewSchema, IdParamsSchema, formatBytes, type FileView } from '../../protocol/index.ts';
import { mayAccessJob, ownerOf } from '../../core/access.ts';
import type { FileRecord, Store } from '../../store/store.ts';
import { routeSchema } from './openapi.ts';
import { parseRequest } from './rest-inputs.ts';

/** How long a download link in a task lasts. */
export const FILE_LINK_TTL_MS = 3_600_000;

/** A file as the REST API shows it. */
export function fileView(f: FileRecord): FileView {
  return { file_id: f.id, filename: f.filename, size: f.size, content_type: f.contentType, sha256: f.sha256, job_id: f.jobId, created_at: new Date(f.createdAt).toISOString() };
}

/** Signs and checks download links (null when authentication is off: links need no signature). */
export interface FileLinkSigner {
  sign(fileId: string, expires: number): string;
  verify(fileId: string, expires: number, signature: string): boolean;
}

/** The path a worker downloads a file from: signed for an hour when authentication is on. */
export function fileLink(fileId: string, signer: FileLinkSigner | null, now = Date.now()): string {
  const base = `/api/files/${encodeURIComponent(fileId)}/download`;
  if (!signer) return base;
  const expires = now + FILE_LINK_TTL_MS;
  return `${base}?expires=${expires}&sig=${signer.sign(fileId, expires)}`;
}

const DownloadQuerySchema = z.object({ expires: z.coerce.number().int().optional(), sig: z.string().max(200).optional() });

/**
 * Files for tasks: upload (the body is the file's bytes, up to --max-file-size), read one's
 * details or bytes with an API key (its owner's, or admin), and the signed download link
 * workers are given with the tasks that carry it.
 */
export function registerFileRoutes(app: FastifyInstance, deps: { store: Store; signer: FileLinkSigner | null; maxFileBytes: number }): void {
  const { store, signer, maxFileBytes } = deps;
  const find = async (id: string, principal: Parameters<typeof mayAccessJob>[0]): Promise<FileRecord> => {
    const [f] = await store.fileList([id]);
    if (!f || !mayAccessJob(principal, f.owner)) throw new CrowdComputeError('CC_ERR_TASK_NOT_FOUND', `no file has the id ${id}`, { fileId: id });
    return f;
  };

  // The upload takes any content type as bytes: registered in a scope of its own, so the
  // other routes keep parsing JSON.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxFileBytes }, (_req, body, done) => done(null, body));
    scope.post('/api/files', {
      config: { access: 'submit' }, bodyLimit: maxFileBytes,
      schema: routeSchema({
        operationId: 'uploadFile', tags: ['files'], summary: `Upload a file for tasks to carry (the body is its bytes; at most the foreman's --max-file-size, ${formatBytes(maxFileBytes)} by default)`,
        querystring: FileUploadQuerySchema, response: { 201: FileViewSchema }, errors: [400, 401, 403, 413, 507],
      }),
    }, async (req, reply): Promise<FileView> => {
      const q = parseRequest(FileUploadQuerySchema, req.query, 'query');
      const data = Buffer.isBuffer(req.body) ? req.body : Buffer.from(typeof req.body === 'string' ? req.body : '');
      const now = Date.now();
      const record = {
        id: randomUUID(), owner: ownerOf(req.principal), filename: q.filename, size: data.length,
        contentType: (req.headers['content-type'] ?? 'application/octet-stream').split(';')[0].trim() || 'application/octet-stream',
        sha256: createHash('sha256').update(data).digest('hex'), createdAt: now,
      };
      await store.fileInsert({ ...record, data });
      reply.status(201);
      return fileView({ ...record, jobId: null });
    });
  });

  app.get('/api/files/:id', {
    schema: routeSchema({ operationId: 'getFile', tags: ['files'], summary: "A file's name, size, type, digest and job", params: IdParamsSchema, response: { 200: FileViewSchema }, errors: [401, 404] }),
  }, async (req): Promise<FileView> => fileView(await find(parseRequest(IdParamsSchema, req.params, 'path').id, req.principal)));

  // Bytes, for a key that may see the file, or through the signed link a task carries.
  app.get('/api/files/:id/download', {
    config: { access: 'link' },
    schema: routeSchema({ operationId: 'downloadFile', tags: ['files'], summary: "A file's bytes: with an API key that may see it, or the signed link given to the worker of a task that carries it",
      params: IdParamsSchema, querystring: DownloadQuerySchema, response: { 200: z.unknown().describe("the file's bytes, with its content type") }, errors: [401, 404] }),
  }, async (req, reply) => {
    const id = parseRequest(IdParamsSchema, req.params, 'path').id;
    const q = parseRequest(DownloadQuerySchema, req.query, 'query');
    let file: FileRecord;
    if (!signer) {
      [file] = await store.fileList([id]);
    } else if (q.sig !== undefined && q.expires !== undefined) {
      if (q.expires < Date.now() || !signer.verify(id, q.expires, q.sig)) throw new CrowdComputeError('CC_ERR_UNAUTHORIZED', `the download link of file ${id} is not valid or has expired`);
      [file] = await store.fileList([id]);
    } else {
      file = await find(id, req.principal);
    }
    if (!file) throw new CrowdComputeError('CC_ERR_TASK_NOT_FOUND', `no file has the id ${id}`, { fileId: id });
    const data = await store.fileData(id);
    if (!data) throw new CrowdComputeError('CC_ERR_TASK_NOT_FOUND', `no file has the id ${id}`, { fileId: id });
    reply.header('content-type', file.contentType);
    reply.header('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(file.filename)}`);
    return reply.send(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
}
