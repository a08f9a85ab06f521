// The API's answers as the command line reads them: only the fields it uses,
// parsed at the boundary (extra fields pass through for --json output). The
// status and level literals are the schema's, from core/domain.ts.
import { z } from 'zod';
import { InstanceStatus, LogLevel } from '../../../core/domain.js';

const JsonObject = z.record(z.string(), z.unknown());

export const ProblemSchema = z.looseObject({
  type: z.string().optional(),
  title: z.string().optional(),
  status: z.number().optional(),
  detail: z.string().optional(),
  request_id: z.string().optional(),
});

export const IssuedTokenSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  token: z.string(),
  token_prefix: z.string(),
  expires_at: z.string().nullable(),
});

export const MeSchema = z.looseObject({
  principal: z.string(),
  role: z.string(),
  user: z.object({ id: z.string(), email: z.string(), name: z.string() }).nullable(),
  token: z
    .object({ id: z.string(), name: z.string(), expires_at: z.string().nullable() })
    .nullable(),
});

export const KeySchema = z.looseObject({
  type: z.string(),
  hint: z.string().nullable(),
  updated_at: z.string(),
  expires_at: z.string().nullable(),
  active: z.boolean(),
});
export const KeyListSchema = z.looseObject({ keys: z.array(KeySchema) });

export const TypeSchema = z.looseObject({
  name: z.string(),
  display_name: z.string(),
  description: z.string().nullable(),
  requires_key: z.boolean(),
  max_duration_minutes: z.number().nullable(),
  is_active: z.boolean(),
});
export const TypeListSchema = z.looseObject({ types: z.array(TypeSchema) });

export const InstanceSchema = z.looseObject({
  id: z.string(),
  type: z.string(),
  status: InstanceStatus,
  access_url: z.string(),
  token_prefix: z.string(),
  node: z.string().nullable(),
  port: z.number().nullable(),
  expires_at: z.string(),
  last_accessed: z.string().nullable(),
  config: JsonObject,
  error_message: z.string().nullable(),
  created_at: z.string(),
});
export type Instance = z.infer<typeof InstanceSchema>;
export const InstanceWithTokenSchema = InstanceSchema.extend({ access_token: z.string() });
export const InstanceListSchema = z.looseObject({
  instances: z.array(InstanceSchema),
  next_cursor: z.string().nullable(),
});

export const LogLineSchema = z.looseObject({
  id: z.string(),
  timestamp: z.string(),
  level: LogLevel,
  source: z.string().nullable(),
  message: z.string(),
});
export type LogLine = z.infer<typeof LogLineSchema>;
export const LogPageSchema = z.looseObject({
  logs: z.array(LogLineSchema),
  next_cursor: z.string().nullable(),
});

export const EventSchema = z.looseObject({
  id: z.string(),
  type: z.string(),
  data: JsonObject,
  created_at: z.string(),
});
export const EventPageSchema = z.looseObject({
  events: z.array(EventSchema),
  next_cursor: z.string().nullable(),
});

export const UserSchema = z.looseObject({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  role: z.string(),
  active: z.boolean(),
  created_at: z.string(),
});
export const UserListSchema = z.looseObject({ users: z.array(UserSchema) });

export const NodeSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  status: z.string(),
  public_host: z.string(),
  heartbeat_age_seconds: z.number().nullable(),
  ports: z.object({ free: z.number(), used: z.number() }),
});
export const NodeListSchema = z.looseObject({ nodes: z.array(NodeSchema) });
export const DrainResultSchema = z.looseObject({
  node: NodeSchema,
  moved: z.array(z.object({ instance_id: z.string(), to_node: z.string(), port: z.number() })),
  not_moved: z.array(z.object({ instance_id: z.string(), reason: z.string() })),
});
