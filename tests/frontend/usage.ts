// A frontend's use of the generated types, type-checked with `tsc --noEmit` in CI
// (tests/frontend/test_generated_types.py): a schema or OpenAPI change that breaks it fails there.
// `./graphql/` is graphql-codegen's client preset output, `./rest` openapi-typescript's.
import {
  CreateTaskDocument,
  TasksDocument,
  type CreateTaskMutationVariables,
  type TaskPageQuery,
  type TasksQuery,
  type UpdateTaskMutationVariables,
} from './graphql/graphql';
import type { components, paths } from './rest';

type Task = TasksQuery['tasks'][number];

export function titles(answer: TasksQuery): string[] {
  return answer.tasks.map((task: Task) => task.title);
}

export function nextCursor(page: TaskPageQuery): string | null {
  const { hasNextPage, endCursor } = page.tasksConnection.pageInfo;
  return hasNextPage ? endCursor : null;
}

export const create: CreateTaskMutationVariables = {
  userId: 'alice',
  input: { title: 'Buy milk', description: null },
  key: '4f1c2b9e-2d7a-4e52-9a4e-0c6c7e1d2f10',
};

export const rename: UpdateTaskMutationVariables = {
  userId: 'alice',
  id: '00000000-0000-0000-0000-000000000001',
  input: { title: 'Buy oat milk' },
  version: 3,
};

// The documents a client sends, with the hash trusted documents mode knows them by.
export const documents = [TasksDocument, CreateTaskDocument];

// The REST side, from the OpenAPI document.
type RestTask = components['schemas']['TaskRead'];
type TaskList =
  paths['/api/{user_id}/tasks']['get']['responses'][200]['content']['application/json'];
type CreateBody = NonNullable<
  paths['/api/{user_id}/tasks']['post']['requestBody']
>['content']['application/json'];
type Problem = components['schemas']['Problem'];

export const body: CreateBody = { title: 'Buy milk', description: '2 litres' };

export function openTasks(list: TaskList): RestTask[] {
  return list.filter((task: RestTask) => !task.completed);
}

export function explain(problem: Problem): string {
  return `${problem.error_type}: ${problem.detail}`;
}
