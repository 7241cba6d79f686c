/** A planned change of one file: what it holds now (null: absent) and what it will hold. */
export interface FileChange {
  /** Path relative to the repository root, with forward slashes. */
  path: string;
  before: string | null;
  after: string;
}
