/**
 * One gateway replica as a real process (ts-node, like startGatewayProcess, which it reuses), so it
 * can be SIGKILLed, SIGSTOPped and restarted on the same port: pods and resolvers keep its URL.
 */
import { trackChild, waitUntilStopped } from '../../../tools/stack/procs';
import { GatewayProcess, startGatewayProcess } from '../gateway';
import { HttpClient, metricValue } from '../http';
import { waitFor } from '../wait';

export class GatewayReplica {
  private proc?: GatewayProcess;
  /** Output of every process this replica has been, in order (a restart keeps the earlier lines). */
  private earlierOutput = '';
  readonly url: string;

  constructor(
    readonly name: string,
    private readonly env: Record<string, string>,
    private readonly http: HttpClient,
  ) {
    this.url = `http://127.0.0.1:${env.PORT}`;
  }

  get running(): boolean {
    const c = this.proc?.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.proc?.child.pid : undefined;
  }

  /** Starts the process and waits until it takes registrations (/health/ready 200). */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    if (this.proc) this.earlierOutput += this.proc.output();
    this.proc = await startGatewayProcess(this.env);
    // startGatewayProcess does not track its child: a crashed jest run must not leave gateways behind.
    trackChild(this.proc.child);
    if (!this.running) throw new Error(`${this.name} exited during start:\n${this.output()}`);
    await waitFor(`${this.name} ready`, async () => (await this.http.request(this.url, 'GET', '/health/ready', undefined, 1000)).status === 200, 60_000);
  }

  /** SIGKILL: a crash, no graceful shutdown. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc!.child.kill('SIGCONT');
    this.proc!.child.kill('SIGKILL');
    await this.proc!.exited;
  }

  /** SIGTERM (graceful shutdown), SIGKILL if it takes longer than 15 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const child = this.proc!.child;
    child.kill('SIGTERM');
    child.kill('SIGCONT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.proc!.exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** SIGSTOP: the port still accepts connections (the kernel does), nothing answers. */
  freeze(): void {
    const pid = this.pid;
    if (!pid) return;
    process.kill(pid, 'SIGSTOP');
    waitUntilStopped(pid, 2_000);
  }

  thaw(): void {
    const pid = this.pid;
    if (pid) process.kill(pid, 'SIGCONT');
  }

  output(): string {
    return this.earlierOutput + (this.proc?.output() ?? '');
  }

  /** One metric of this replica (summed over label sets matching `labels`). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const res = await this.http.request(this.url, 'GET', '/metrics', undefined, 3000);
    return metricValue(res.body, name, labels);
  }

  async metricsText(): Promise<string> {
    return (await this.http.request(this.url, 'GET', '/metrics', undefined, 3000)).body;
  }
}


