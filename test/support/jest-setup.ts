/**
 * Runs in every integration test file (jest setupFilesAfterEnv): the file's HTTP client is closed
 * when the file ends, so no test has to remember it and an idle keep-alive socket never holds jest.
 */
import { closeHttpClient } from './http';

afterAll(() => closeHttpClient());
