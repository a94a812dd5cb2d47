/* The "shared" variant's executable: tokio and the whole target live in libtokio_target.so. */
void tokio_target_main(void);

int main(void)
{
	tokio_target_main();
	return 0;
}
